// Starts the app. A failure outside any page (at start, or an unhandled rejection) is shown
// in the page with a Reload button: never a blank page, never a stack trace.
import { render } from "preact";
import { App, Boundary } from "./app";
import { chooseLanguage, format } from "./i18n";
import "./style.css";

const root = document.getElementById("app")!;

function lang() {
  return chooseLanguage({ chosen: sessionStorage.getItem("bookrental.language"), browser: navigator.languages ?? [] });
}

function showFailure(reason: unknown) {
  const message = reason instanceof Error ? reason.message : String(reason);
  let region = document.getElementById("failure");
  if (!region) {
    region = document.createElement("p");
    region.id = "failure";
    region.setAttribute("role", "alert");
    region.className = "alert";
    document.body.prepend(region);
  }
  region.textContent = format(lang(), "unexpected", { message });
}

window.addEventListener("error", (e) => showFailure(e.error ?? e.message));
window.addEventListener("unhandledrejection", (e) => showFailure(e.reason));

try {
  root.textContent = "";
  render(
    <Boundary t={(key, values) => format(lang(), key, values)}>
      <App />
    </Boundary>,
    root,
  );
} catch (err) {
  showFailure(err);
}
