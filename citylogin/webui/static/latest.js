// A view drawn from answers that may come back in any order: two quick actions each read the audit
// trail again, and the read made after the first may be answered after the one made after the second.
// Only the answer to the latest read of a view is drawn (or its failure shown); an older one arriving
// later is dropped, so it never replaces the newer view.

/** The reads of one view. `busy`, if given, is marked aria-busy from the first read until the latest
 * one is done. */
export function latestOnly({ busy = null } = {}) {
  let latest = 0;
  return {
    /** Calls `request()`; `draw(answer)` or `failed(error)` runs only if no newer read of this view (nor
     * drawn()) came since. Resolves with whether this read was still the latest when done. */
    async read(request, { draw, failed }) {
      const ticket = ++latest;
      const isLatest = () => ticket === latest;
      busy?.setAttribute("aria-busy", "true");
      try {
        let answer;
        try {
          answer = await request();
        } catch (error) {
          if (isLatest()) failed(error);
          return isLatest();
        }
        if (isLatest()) await draw(answer);
        return isLatest();
      } finally {
        if (isLatest()) busy?.removeAttribute("aria-busy");
      }
    },

    /** The view is drawn now from an answer of another call (an action's own): reads started before
     * it give way to it. */
    drawn() {
      latest += 1;
      busy?.removeAttribute("aria-busy");
    },
  };
}
