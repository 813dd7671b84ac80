// The app's frame: configuration, sign-in, the header (user, language, sign-out), the
// navigation of each role, the unreachable banner, and a boundary that never leaves a blank page.
import { Component, type ComponentChildren } from "preact";
import { useCallback, useEffect, useMemo, useRef, useState } from "preact/hooks";
import { createApi, devSignIn, DevSignInError } from "./api";
import { fetchConfig, type AppConfig } from "./config";
import { Ctx, translator, type AppContext } from "./context";
import { retryDelay } from "./errors";
import { chooseLanguage, LANGUAGE_NAMES, LANGUAGES, type Lang, type MessageKey } from "./i18n";
import { beginSignIn, completeSignIn, redirectUri, strippedUrl } from "./oidc";
import { Alert, BooksPage, DeskPage, NotificationsPage, PreferencesPage, ReservationsPage, StockPage } from "./pages";
import { clearSession, loadSession, newSession, saveSession, type Session } from "./session";

/** The language picked in the switcher, for this tab (it outranks the saved preference). */
export const LANGUAGE_KEY = "bookrental.language";
/** performance.mark of the first usable screen (performance.getEntriesByName(...)[0].startTime). */
export const FIRST_RENDER_MARK = "bookrental:first-render";

type Route = "books" | "reservations" | "notifications" | "preferences" | "stock" | "desk";

const NAVIGATION: Record<string, readonly { route: Route; label: MessageKey }[]> = {
  customer: [
    { route: "books", label: "books" },
    { route: "reservations", label: "myReservations" },
    { route: "notifications", label: "notifications" },
    { route: "preferences", label: "preferences" },
  ],
  stock_manager: [
    { route: "stock", label: "stock" },
    { route: "desk", label: "desk" },
  ],
};

const PAGES: Record<Route, () => preact.JSX.Element> = {
  books: BooksPage,
  reservations: ReservationsPage,
  notifications: NotificationsPage,
  preferences: PreferencesPage,
  stock: StockPage,
  desk: DeskPage,
};

function routesOf(session: Session) {
  return session.roles.flatMap((role) => NAVIGATION[role] ?? []);
}

function currentRoute(): string {
  return window.location.hash.replace(/^#\/?/, "");
}

function browserLanguages(): readonly string[] {
  return navigator.languages?.length ? navigator.languages : [navigator.language];
}

export function App() {
  const [config, setConfig] = useState<AppConfig>();
  const [configDown, setConfigDown] = useState<string>();
  const [session, setSession] = useState<Session | null>(() => loadSession(sessionStorage, Date.now()));
  const [chosen, setChosen] = useState<string | null>(() => sessionStorage.getItem(LANGUAGE_KEY));
  const [preference, setPreference] = useState<string>();
  const [notice, setNotice] = useState<string>();
  const [down, setDown] = useState<ReadonlySet<string>>(new Set());
  const [route, setRoute] = useState(currentRoute);
  const lang: Lang = chooseLanguage({ chosen, preference, browser: browserLanguages() });
  const t = useMemo(() => translator(lang), [lang]);
  const token = useRef<string | undefined>(session?.token);
  token.current = session?.token;
  // The session now, for answers that arrive after a sign-out: they must not change the page.
  const current = useRef<Session | null>(session);
  current.current = session;

  useEffect(() => {
    document.documentElement.lang = lang;
    if (!session) document.title = `${t("signInHeading")} · ${t("appName")}`;
  }, [lang, session]);

  useEffect(() => {
    const onHash = () => setRoute(currentRoute());
    window.addEventListener("hashchange", onHash);
    return () => window.removeEventListener("hashchange", onHash);
  }, []);

  // /config.json, retried with backoff while the gateway cannot be reached.
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    let attempt = 0;
    const load = () =>
      fetchConfig().then(
        (c) => {
          setConfig(c);
          setConfigDown(undefined);
        },
        (err: unknown) => {
          setConfigDown(err instanceof Error ? err.message : String(err));
          timer = setTimeout(load, retryDelay(attempt++));
        },
      );
    void load();
    return () => clearTimeout(timer);
  }, []);

  const signOut = useCallback((message?: string) => {
    clearSession(sessionStorage);
    setSession(null);
    setPreference(undefined);
    setNotice(message);
  }, []);

  // Back from the OpenID provider: exchange the code, then take it out of the URL and history.
  useEffect(() => {
    if (config?.signIn !== "oidc") return;
    const href = window.location.href;
    if (!/[?&](code|error)=/.test(window.location.search)) return;
    window.history.replaceState(null, "", strippedUrl(href));
    completeSignIn(config, sessionStorage, href, Date.now()).then(
      (s) => {
        if (!s) return;
        saveSession(sessionStorage, s);
        setSession(s);
        setNotice(undefined);
      },
      (err: unknown) => setNotice(err instanceof Error ? err.message : String(err)),
    );
  }, [config]);

  // The token's end: back to sign-in, saying why.
  useEffect(() => {
    if (!session) return;
    const timer = setTimeout(() => signOut(translator(lang)("sessionEnded")), Math.max(0, session.expiresAt - Date.now()));
    return () => clearTimeout(timer);
  }, [session]);

  const api = useMemo(() => createApi(window.location.origin, () => token.current), []);

  // The first screen a person can use (the sign-in form, or a page once signed in), as a
  // performance mark: the browser tests read its startTime as the time to first render.
  const ready = config !== undefined || session !== null;
  useEffect(() => {
    if (ready && performance.getEntriesByName(FIRST_RENDER_MARK).length === 0) performance.mark(FIRST_RENDER_MARK);
  }, [ready]);

  // A customer's saved notification language is the page's language unless one was chosen here.
  useEffect(() => {
    if (!session?.roles.includes("customer")) return;
    let signedIn = true; // until this session ends: a late answer is then ignored
    api.alerts.getPreferences({}).then(
      (r) => signedIn && setPreference(r.preferences?.updateTime ? r.preferences.language : undefined),
      () => undefined, // the language falls back to the browser's; the Preferences page reports errors
    );
    return () => {
      signedIn = false;
    };
  }, [session]);

  const setUnreachable = useCallback((source: string, isDown: boolean) => {
    setDown((current) => {
      if (current.has(source) === isDown) return current;
      const next = new Set(current);
      if (isDown) next.add(source);
      else next.delete(source);
      return next;
    });
  }, []);

  const choose = (value: string) => {
    sessionStorage.setItem(LANGUAGE_KEY, value);
    setChosen(value);
  };

  const unreachable = down.size > 0 || configDown !== undefined;
  const banner = unreachable ? <Alert message={t("unreachable")} /> : null;

  if (!session) {
    return (
      <>
        <header class="top">
          <span class="brand">{t("appName")}</span>
          <LanguageSwitcher lang={lang} t={t} onChoose={choose} />
        </header>
        <main>
          {banner}
          {config ? (
            <SignIn
              config={config}
              t={t}
              notice={notice}
              onSignedIn={(s) => {
                saveSession(sessionStorage, s);
                setSession(s);
                setNotice(undefined);
              }}
            />
          ) : (
            <p>{t("loading")}</p>
          )}
        </main>
      </>
    );
  }

  const routes = routesOf(session);
  const active = routes.find((r) => r.route === route)?.route ?? routes[0]?.route;
  const Current = active ? PAGES[active] : undefined;
  const ctx: AppContext = {
    api,
    lang,
    user: session.user,
    t,
    signOut,
    setUnreachable,
    setPreferredLanguage: (language) => current.current === session && setPreference(language || undefined),
  };
  return (
    <Ctx.Provider value={ctx}>
      <header class="top">
        <span class="brand">{t("appName")}</span>
        <span class="user" data-testid="user">
          {session.user}
        </span>
        <LanguageSwitcher lang={lang} t={t} onChoose={choose} />
        <button type="button" onClick={() => signOut()}>
          {t("signOut")}
        </button>
      </header>
      <nav aria-label={t("mainNavigation")}>
        {routes.map((r) => (
          <a key={r.route} href={`#/${r.route}`} aria-current={r.route === active ? "page" : undefined}>
            {t(r.label)}
          </a>
        ))}
      </nav>
      <main>
        {banner}
        <Boundary t={t}>{Current ? <Current key={active} /> : null}</Boundary>
      </main>
    </Ctx.Provider>
  );
}

function LanguageSwitcher({ lang, t, onChoose }: { lang: Lang; t: AppContext["t"]; onChoose: (l: string) => void }) {
  return (
    <label class="language">
      {t("language")}{" "}
      <select value={lang} onChange={(e) => onChoose(e.currentTarget.value)}>
        {LANGUAGES.map((l) => (
          <option key={l} value={l} lang={l}>
            {LANGUAGE_NAMES[l]}
          </option>
        ))}
      </select>
    </label>
  );
}

function SignIn({
  config,
  t,
  notice,
  onSignedIn,
}: {
  config: AppConfig;
  t: AppContext["t"];
  notice: string | undefined;
  onSignedIn: (s: Session) => void;
}) {
  const [user, setUser] = useState("");
  const [role, setRole] = useState("customer");
  const [problem, setProblem] = useState<string>();
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event) => {
    e.preventDefault();
    setProblem(undefined);
    if (config.signIn === "oidc") {
      setBusy(true);
      try {
        window.location.assign(await beginSignIn(config, sessionStorage, redirectUri(window.location)));
      } catch (err) {
        setProblem(err instanceof Error ? err.message : String(err));
        setBusy(false);
      }
      return;
    }
    const id = user.trim();
    if (!id) {
      setProblem(t("userRequired"));
      return;
    }
    setBusy(true);
    try {
      const { token, expiresIn } = await devSignIn(id, role);
      onSignedIn(newSession(token, id, [role], expiresIn, Date.now()));
    } catch (err) {
      setProblem(err instanceof DevSignInError ? err.message : t("unreachable"));
    } finally {
      setBusy(false);
    }
  };

  const message = notice ? `${t("sessionEnded")} ${notice === t("sessionEnded") ? "" : notice}`.trim() : undefined;
  return (
    <section aria-labelledby="signin-heading">
      <h1 id="signin-heading">{t("signInHeading")}</h1>
      <Alert message={problem ?? message} />
      <form onSubmit={(e) => void submit(e)} class="stacked" noValidate aria-labelledby="signin-heading">
        {config.signIn === "dev" ? (
          <>
            <label for="signin-user">{t("user")}</label>
            <input id="signin-user" type="text" autoComplete="username" value={user} onInput={(e) => setUser(e.currentTarget.value)} />
            <fieldset>
              <legend>{t("role")}</legend>
              <label>
                <input type="radio" name="role" value="customer" checked={role === "customer"} onChange={() => setRole("customer")} /> {t("customer")}
              </label>
              <label>
                <input type="radio" name="role" value="stock_manager" checked={role === "stock_manager"} onChange={() => setRole("stock_manager")} />{" "}
                {t("stockManager")}
              </label>
            </fieldset>
          </>
        ) : null}
        <div>
          <button type="submit" disabled={busy}>
            {t("signIn")}
          </button>
        </div>
      </form>
    </section>
  );
}

/** Whatever a page throws while rendering becomes a message and a Reload button, never a blank page. */
export class Boundary extends Component<{ t: AppContext["t"]; children: ComponentChildren }, { error?: string }> {
  state: { error?: string } = {};
  componentDidCatch(error: unknown) {
    this.setState({ error: error instanceof Error ? error.message : String(error) });
  }
  render() {
    if (this.state.error === undefined) return this.props.children;
    return (
      <div>
        <Alert message={this.props.t("unexpected", { message: this.state.error })} />
        <button type="button" onClick={() => window.location.reload()}>
          {this.props.t("reload")}
        </button>
      </div>
    );
  }
}
