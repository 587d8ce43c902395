// The notes list, drawn from the API the same way whichever way the page signed in.

/** Lists the person's notes in #notes, each with its Delete button; `api(method, path, body)` calls the
 * app's API, `run(action)` shows an action's error. */
export async function drawNotes(api, run) {
  const { notes } = await api("GET", "/api/notes");
  document.querySelector("#notes").replaceChildren(...notes.map((note) => {
    const item = document.createElement("li");
    item.textContent = note.text;
    const remove = document.createElement("button");
    remove.type = "button";
    remove.textContent = "Delete";
    remove.addEventListener("click", () => run(async () => {
      await api("DELETE", `/api/notes/${note.id}`);
      await drawNotes(api, run);
    }));
    item.append(remove);
    return item;
  }));
}

/** The "New note" form: adds the note through `api`, then draws the list again. */
export function wireNoteForm(api, run) {
  document.querySelector("#note-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const input = document.querySelector("#note-text");
    run(async () => {
      await api("POST", "/api/notes", { text: input.value });
      input.value = "";
      await drawNotes(api, run);
    });
  });
}

/** The text for the API's 503 `session_unverifiable` (citylogin cannot be reached to check the sign-in):
 * nothing has ended, so the page stays signed in and says so. */
export function unreachable(error) {
  const wait = error.retry_after ? `in ${error.retry_after} s` : "in a moment";
  return `citylogin cannot be reached just now, so your sign-in cannot be checked. You are still signed in: try again ${wait}.`;
}
