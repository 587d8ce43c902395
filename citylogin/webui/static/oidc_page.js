// The pages /oidc answers a browser itself (oidc/core/pages.py), which allow no inline script: the
// form_post page's form goes to the app at once (its button does it without a script), and an error
// page offers "go back" when there is a page to go back to (its link home works without a script).

const response = document.getElementById("oidc-response");
if (response) response.submit();

const back = document.getElementById("oidc-back");
if (back && history.length > 1) {
  back.hidden = false;
  back.addEventListener("click", () => history.back());
}
