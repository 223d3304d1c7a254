// Hash router: #/screen/arg/... renders one screen module into <main id="view">.
import { apiToken, getJSON, setApiToken } from "./api.js";
import * as overview from "./overview.js";
import * as topics from "./topics.js";
import * as groups from "./groups.js";
import * as messages from "./messages.js";
import * as tables from "./tables.js";
import * as dlq from "./dlq.js";

const screens = { overview, topics, groups, messages, tables, dlq };
let current = null;

async function route() {
  const [name = "overview", ...args] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const screen = screens[name] || overview;
  if (current && current.leave) current.leave();
  current = screen;
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", link.dataset.screen === name);
  }
  const view = document.getElementById("view");
  view.replaceChildren();
  view.dataset.screen = name;
  try {
    await screen.render(view, args, new URLSearchParams(location.search));
  } catch (error) {
    const message = document.createElement("div");
    message.className = "notice error";
    message.dataset.testid = "error";
    message.textContent = error.message;
    view.append(message);
  }
}

async function badge() {
  try {
    const cluster = await getJSON("/api/cluster");
    document.getElementById("cluster-badge").textContent =
      `${cluster.brokers.length} broker(s) · group ${cluster.consumer_group}`;
  } catch { /* the overview shows the error */ }
}

// Sign-in: shown when the server asks for the token (401) or says it needs one.
const login = document.getElementById("login");
const logout = document.getElementById("logout");

function showSignedIn() {
  login.hidden = Boolean(apiToken());
  logout.hidden = !apiToken();
}

login.addEventListener("submit", (event) => {
  event.preventDefault();
  setApiToken(new FormData(login).get("token"));
  login.reset();
  showSignedIn();
  route();
  badge();
});
logout.addEventListener("click", () => { setApiToken(""); showSignedIn(); login.hidden = false; });
window.addEventListener("auth-required", () => {
  setApiToken("");  // a refused token is forgotten, so the field asks again
  login.hidden = false;
  logout.hidden = true;
});

async function start() {
  try {
    const info = await getJSON("/api/console");
    document.body.dataset.consoleMode = info.mode;
    if (info.token !== "none" && !apiToken()) login.hidden = false;
    else showSignedIn();
  } catch { /* the screen shows the error */ }
  route();
  badge();
}

window.addEventListener("hashchange", route);
start();
