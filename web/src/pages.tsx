// The pages: customers' Books, My reservations, Notifications, Preferences; stock managers'
// Stock and Desk. Every message shape comes from the code generated from protos/.
import { create } from "@bufbuild/protobuf";
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";
import { PreferencesSchema, type Preferences } from "@gen/bookrental/alert/v1/alert_pb";
import { ReservationStatus, type Book, type Reservation } from "@gen/bookrental/reservation/v1/reservation_pb";
import type { Hold } from "@gen/bookrental/stock/v1/stock_pb";
import type { ComponentChildren } from "preact";
import { useEffect, useRef, useState } from "preact/hooks";
import { listBooksRequest } from "./api";
import { useApp, useLoad, type AppContext } from "./context";
import { describeError, type Problem } from "./errors";
import { LANGUAGE_NAMES, LANGUAGES, type Lang } from "./i18n";
import { canCancel, holdWord, kindWord, pollInterval, SLOW_POLL_MS, statusWord } from "./status";

const BOOKS_PAGE_SIZE = 10;
// ListStocks has no search: the largest page it gives, so a book just received is seldom on a later one.
const STOCK_PAGE_SIZE = 100;

export function Alert({ message, id }: { message: string | undefined; id?: string }) {
  return message ? (
    <p role="alert" class="alert" id={id}>
      {message}
    </p>
  ) : null;
}

/** A page's list as a table: the page's problem and answer above it, then "loading" until the
 * first answer, the empty text for none, or one row per item under the column headings (an
 * unnamed last column when the rows carry buttons). */
function Listing<T>(props: {
  problem: string | undefined;
  answer?: string;
  items: readonly T[] | undefined;
  empty: string;
  columns: readonly string[];
  actions?: boolean;
  row: (item: T) => ComponentChildren;
}) {
  const { t } = useApp();
  return (
    <>
      <Alert message={props.problem} />
      <p role="status" class="answer">
        {props.answer}
      </p>
      {props.items === undefined ? (
        <p>{t("loading")}</p>
      ) : props.items.length === 0 ? (
        <p>{props.empty}</p>
      ) : (
        <table>
          <thead>
            <tr>
              {props.columns.map((c) => (
                <th scope="col" key={c}>
                  {c}
                </th>
              ))}
              {props.actions ? (
                <th scope="col">
                  <span class="visually-hidden">{t("actions")}</span>
                </th>
              ) : null}
            </tr>
          </thead>
          <tbody>{props.items.map(props.row)}</tbody>
        </table>
      )}
    </>
  );
}

function when(lang: Lang, ts: Timestamp | undefined): string {
  if (!ts) return "";
  return new Intl.DateTimeFormat(lang === "ko" ? "ko-KR" : "en-GB", {
    dateStyle: "medium",
    timeStyle: "medium",
  }).format(timestampDate(ts));
}

/** Runs a call on a user's action; returns its problem (401 has already signed out). */
async function act<T>(app: AppContext, call: () => Promise<T>, fields: readonly string[] = []) {
  try {
    return { value: await call(), problem: undefined };
  } catch (err) {
    const problem: Problem = describeError(err, fields);
    if (problem.kind === "signin") app.signOut(problem.message);
    return { value: undefined, problem };
  }
}

function problemText(app: AppContext, problem: Problem | undefined): string | undefined {
  if (!problem) return undefined;
  if (problem.kind === "unreachable") return app.t("unreachable");
  return problem.message;
}

/** Page tokens visited so far: Next pushes the response's token, Previous pops. */
function usePaging(resetOn: readonly unknown[]) {
  const [tokens, setTokens] = useState<string[]>([""]);
  useEffect(() => setTokens([""]), resetOn);
  return {
    token: tokens[tokens.length - 1],
    first: tokens.length === 1,
    next: (token: string) => setTokens((ts) => [...ts, token]),
    previous: () => setTokens((ts) => (ts.length > 1 ? ts.slice(0, -1) : ts)),
  };
}

function Pager({ paging, nextToken }: { paging: ReturnType<typeof usePaging>; nextToken: string | undefined }) {
  const { t } = useApp();
  return (
    <div class="pager">
      <button type="button" disabled={paging.first} onClick={paging.previous}>
        {t("previousPage")}
      </button>
      <button type="button" disabled={!nextToken} onClick={() => nextToken && paging.next(nextToken)}>
        {t("nextPage")}
      </button>
    </div>
  );
}

function Page({ title, children }: { title: string; children: ComponentChildren }) {
  const heading = useRef<HTMLHeadingElement>(null);
  const { t } = useApp();
  useEffect(() => {
    heading.current?.focus();
    document.title = `${title} · ${t("appName")}`;
  }, [title]);
  return (
    <section aria-labelledby="page-heading">
      <h1 id="page-heading" tabIndex={-1} ref={heading}>
        {title}
      </h1>
      {children}
    </section>
  );
}

// --- customers ---------------------------------------------------------------

export function BooksPage() {
  const app = useApp();
  const { t } = app;
  const [typed, setTyped] = useState("");
  const [query, setQuery] = useState("");
  const [waitlist, setWaitlist] = useState(false);
  const [answer, setAnswer] = useState<string>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    const timer = setTimeout(() => setQuery(typed.trim()), 250);
    return () => clearTimeout(timer);
  }, [typed]);
  const paging = usePaging([query]);
  const books = useLoad(
    "books",
    () => app.api.reservations.listBooks(listBooksRequest(query, paging.token, BOOKS_PAGE_SIZE)),
    [query, paging.token],
    () => SLOW_POLL_MS,
  );

  const reserve = async (book: Book) => {
    setAnswer(undefined);
    setProblem(undefined);
    const requestId = crypto.randomUUID();
    const { value, problem } = await act(app, () =>
      app.api.reservations.createReservation({ bookId: book.bookId, requestId, waitlist }),
    );
    if (value?.reservation) {
      setAnswer(t("reserved", { id: value.reservation.reservationId, book: book.title || book.bookId }));
      books.reload();
    }
    setProblem(problemText(app, problem));
  };

  return (
    <Page title={t("books")}>
      <div class="toolbar">
        <label>
          {t("search")}{" "}
          <input type="search" value={typed} onInput={(e) => setTyped(e.currentTarget.value)} />
        </label>
        <label>
          <input type="checkbox" checked={waitlist} onChange={(e) => setWaitlist(e.currentTarget.checked)} />{" "}
          {t("joinWaitlist")}
        </label>
      </div>
      <Listing
        problem={problem ?? books.error}
        answer={answer}
        items={books.data?.books}
        empty={t("noBooks")}
        columns={[t("title"), t("available"), t("waiting")]}
        actions
        row={(b) => (
          <tr key={b.bookId}>
            <th scope="row">{b.title || b.bookId}</th>
            <td>{b.available}</td>
            <td>{b.waiting}</td>
            <td>
              <button type="button" onClick={() => void reserve(b)} aria-label={t("reserveBook", { title: b.title || b.bookId })}>
                {t("reserve")}
              </button>
            </td>
          </tr>
        )}
      />
      <Pager paging={paging} nextToken={books.data?.nextPageToken} />
    </Page>
  );
}

/** Titles of books by id, fetched once each (reservations carry only the id). */
const titles = new Map<string, Promise<string>>();

function useTitles(app: AppContext, ids: readonly string[]): Record<string, string> {
  const [known, setKnown] = useState<Record<string, string>>({});
  const key = [...new Set(ids)].sort().join("\n");
  useEffect(() => {
    let stopped = false;
    for (const id of new Set(ids)) {
      if (!titles.has(id)) {
        titles.set(
          id,
          app.api.reservations.getBook({ bookId: id }).then(
            (r) => r.book?.title || id,
            () => {
              titles.delete(id);
              return id;
            },
          ),
        );
      }
      void titles.get(id)!.then((title) => {
        if (!stopped) setKnown((k) => (k[id] === title ? k : { ...k, [id]: title }));
      });
    }
    return () => {
      stopped = true;
    };
  }, [key]);
  return known;
}

function deadlineText(app: AppContext, r: Reservation): string {
  if (r.status === ReservationStatus.CONFIRMED && r.pickupDeadline) {
    return app.t("pickupBy", { time: when(app.lang, r.pickupDeadline) });
  }
  if ((r.status === ReservationStatus.PICKED_UP || r.status === ReservationStatus.RETURNED) && r.dueTime) {
    return app.t("dueAt", { time: when(app.lang, r.dueTime) });
  }
  return "";
}

export function ReservationsPage() {
  const app = useApp();
  const { t } = app;
  const [answer, setAnswer] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const list = useLoad(
    "reservations",
    () => app.api.reservations.listReservations({ pageSize: 100 }),
    [],
    (data) => pollInterval(data.reservations.map((r) => r.status)),
  );
  const reservations = list.data?.reservations ?? [];
  const names = useTitles(
    app,
    reservations.map((r) => r.bookId),
  );

  const cancel = async (r: Reservation) => {
    setAnswer(undefined);
    setProblem(undefined);
    const { value, problem } = await act(app, () =>
      app.api.reservations.cancelReservation({ reservationId: r.reservationId }),
    );
    if (value) {
      setAnswer(t("canceled", { id: r.reservationId }));
      list.reload();
    }
    setProblem(problemText(app, problem));
  };

  return (
    <Page title={t("myReservations")}>
      <Listing
        problem={problem ?? list.error}
        answer={answer}
        items={list.data === undefined ? undefined : reservations}
        empty={t("noReservations")}
        columns={[t("book"), t("status"), t("queuePosition"), t("deadline"), t("reservationId")]}
        actions
        row={(r) => (
          <tr key={r.reservationId} data-status={ReservationStatus[r.status]}>
            <th scope="row">{names[r.bookId] ?? r.bookId}</th>
            <td>
              <span class="status">{t(statusWord(r.status))}</span>
              {r.reason ? <span class="reason"> ({r.reason})</span> : null}
            </td>
            <td>{r.status === ReservationStatus.WAITLISTED && r.queuePosition > 0 ? r.queuePosition : ""}</td>
            <td>{deadlineText(app, r)}</td>
            <td>
              <code>{r.reservationId}</code>
            </td>
            <td>
              {canCancel(r.status) ? (
                <button type="button" onClick={() => void cancel(r)}>
                  {t("cancel")}
                </button>
              ) : null}
            </td>
          </tr>
        )}
      />
    </Page>
  );
}

export function NotificationsPage() {
  const app = useApp();
  const { t } = app;
  const list = useLoad("notifications", () => app.api.alerts.listNotifications({ pageSize: 50 }), [], () => SLOW_POLL_MS);
  const notifications = list.data?.notifications ?? [];
  return (
    <Page title={t("notifications")}>
      <Alert message={list.error} />
      {list.data === undefined ? (
        <p>{t("loading")}</p>
      ) : notifications.length === 0 ? (
        <p>{t("noNotifications")}</p>
      ) : (
        <ul class="notifications">
          {notifications.map((n) => (
            <li key={n.notificationId}>
              <strong class="kind">{t(kindWord(n.kind))}</strong> <span class="message">{n.message}</span>{" "}
              <time class="when">{when(app.lang, n.createTime)}</time>
            </li>
          ))}
        </ul>
      )}
    </Page>
  );
}

const PREFERENCE_FIELDS = ["email", "phone", "channels", "language"] as const;
const CHANNELS = [
  { value: "email", label: "channelEmail" },
  { value: "messenger", label: "channelMessenger" },
] as const;

export function PreferencesPage() {
  const app = useApp();
  const { t } = app;
  const loaded = useLoad("preferences", () => app.api.alerts.getPreferences({}), []);
  const [form, setForm] = useState<Preferences>();
  const [errors, setErrors] = useState<Partial<Record<string, string>>>({});
  const [answer, setAnswer] = useState<string>();
  const [problem, setProblem] = useState<string>();
  useEffect(() => {
    if (loaded.data) setForm(loaded.data.preferences ?? create(PreferencesSchema, { language: app.lang }));
  }, [loaded.data]);

  if (!form) {
    return (
      <Page title={t("preferences")}>
        <Alert message={loaded.error} />
        <p>{t("loading")}</p>
      </Page>
    );
  }
  const set = (change: Partial<Preferences>) => setForm({ ...form, ...change });
  const toggle = (channel: string, on: boolean) =>
    set({ channels: on ? [...new Set([...form.channels, channel])] : form.channels.filter((c) => c !== channel) });
  const save = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setAnswer(undefined);
    setProblem(undefined);
    const { value, problem } = await act(
      app,
      () =>
        app.api.alerts.updatePreferences({
          preferences: { email: form.email.trim(), phone: form.phone.trim(), channels: form.channels, language: form.language },
          updateMask: { paths: [...PREFERENCE_FIELDS] },
        }),
      PREFERENCE_FIELDS,
    );
    if (value?.preferences) {
      setForm(value.preferences);
      setAnswer(t("saved"));
      app.setPreferredLanguage(value.preferences.language);
    } else if (problem?.kind === "refused" && problem.field) {
      setErrors({ [problem.field]: problem.message });
    } else {
      setProblem(problemText(app, problem));
    }
  };
  const described = (field: string, hint?: string) => {
    const ids = [hint, errors[field] ? `${field}-error` : undefined].filter(Boolean).join(" ");
    return { "aria-describedby": ids || undefined, "aria-invalid": errors[field] ? true : undefined };
  };
  return (
    <Page title={t("preferences")}>
      <Alert message={problem} />
      <form onSubmit={(e) => void save(e)} noValidate class="stacked">
        <label for="pref-email">{t("email")}</label>
        <input id="pref-email" type="text" inputMode="email" autoComplete="email" value={form.email} onInput={(e) => set({ email: e.currentTarget.value })} {...described("email")} />
        <Alert id="email-error" message={errors.email} />
        <label for="pref-phone">{t("phone")}</label>
        <input id="pref-phone" type="tel" autoComplete="tel" value={form.phone} onInput={(e) => set({ phone: e.currentTarget.value })} {...described("phone")} />
        <Alert id="phone-error" message={errors.phone} />
        <fieldset {...described("channels")}>
          <legend>{t("channels")}</legend>
          {CHANNELS.map((c) => (
            <label key={c.value}>
              <input type="checkbox" checked={form.channels.includes(c.value)} onChange={(e) => toggle(c.value, e.currentTarget.checked)} /> {t(c.label)}
            </label>
          ))}
        </fieldset>
        <Alert id="channels-error" message={errors.channels} />
        <label for="pref-language">{t("notificationLanguage")}</label>
        <select id="pref-language" value={form.language} onChange={(e) => set({ language: e.currentTarget.value })} {...described("language", "pref-language-hint")}>
          {LANGUAGES.map((l) => (
            <option key={l} value={l}>
              {LANGUAGE_NAMES[l]}
            </option>
          ))}
        </select>
        <small id="pref-language-hint">{t("notificationLanguageHint")}</small>
        <Alert id="language-error" message={errors.language} />
        <div>
          <button type="submit">{t("save")}</button>
        </div>
      </form>
      <p role="status" class="answer">
        {answer}
      </p>
    </Page>
  );
}

// --- stock managers ----------------------------------------------------------

const RECEIVE_FIELDS = ["book_id", "title", "quantity"] as const;

export function StockPage() {
  const app = useApp();
  const { t } = app;
  const paging = usePaging([]);
  const stocks = useLoad(
    "stock",
    () => app.api.stock.listStocks({ pageSize: STOCK_PAGE_SIZE, pageToken: paging.token }),
    [paging.token],
    () => SLOW_POLL_MS,
  );
  const [bookId, setBookId] = useState("");
  const [title, setTitle] = useState("");
  const [quantity, setQuantity] = useState("1");
  const [errors, setErrors] = useState<Partial<Record<string, string>>>({});
  const [answer, setAnswer] = useState<string>();
  const [problem, setProblem] = useState<string>();

  const receive = async (e: Event) => {
    e.preventDefault();
    setErrors({});
    setAnswer(undefined);
    setProblem(undefined);
    const { value, problem } = await act(
      app,
      () => app.api.stock.receiveStock({ bookId: bookId.trim(), title: title.trim(), quantity: Number(quantity) || 0 }),
      RECEIVE_FIELDS,
    );
    if (value?.stock) {
      setAnswer(t("received", { quantity: Number(quantity), book: value.stock.title || value.stock.bookId, available: value.stock.available }));
      stocks.reload();
    } else if (problem?.kind === "refused" && problem.field) {
      setErrors({ [problem.field]: problem.message });
    } else {
      setProblem(problemText(app, problem));
    }
  };
  const described = (field: string) =>
    errors[field] ? { "aria-describedby": `${field}-error`, "aria-invalid": true } : {};
  return (
    <Page title={t("stock")}>
      <form aria-labelledby="receive-heading" onSubmit={(e) => void receive(e)} noValidate class="stacked">
        <h2 id="receive-heading">{t("receive")}</h2>
        <label for="receive-book">{t("bookId")}</label>
        <input id="receive-book" type="text" value={bookId} onInput={(e) => setBookId(e.currentTarget.value)} {...described("book_id")} />
        <Alert id="book_id-error" message={errors.book_id} />
        <label for="receive-title">{t("title")}</label>
        <input id="receive-title" type="text" value={title} onInput={(e) => setTitle(e.currentTarget.value)} {...described("title")} />
        <Alert id="title-error" message={errors.title} />
        <label for="receive-quantity">{t("quantity")}</label>
        <input id="receive-quantity" type="number" min={1} step={1} value={quantity} onInput={(e) => setQuantity(e.currentTarget.value)} {...described("quantity")} />
        <Alert id="quantity-error" message={errors.quantity} />
        <div>
          <button type="submit">{t("receive")}</button>
        </div>
      </form>
      <Listing
        problem={problem ?? stocks.error}
        answer={answer}
        items={stocks.data?.stocks}
        empty={t("noStock")}
        columns={[t("book"), t("title"), t("available"), t("held"), t("onLoan"), t("waiting")]}
        row={(s) => (
          <tr key={s.bookId}>
            <th scope="row">
              <code>{s.bookId}</code>
            </th>
            <td>{s.title}</td>
            <td>{s.available}</td>
            <td>{s.held}</td>
            <td>{s.onLoan}</td>
            <td>{s.waiting}</td>
          </tr>
        )}
      />
      <Pager paging={paging} nextToken={stocks.data?.nextPageToken} />
    </Page>
  );
}

export function DeskPage() {
  const app = useApp();
  const { t } = app;
  const [reservationId, setReservationId] = useState("");
  const [answer, setAnswer] = useState<string>();
  const [problem, setProblem] = useState<string>();
  const describe = (hold: Hold) =>
    t("holdState", {
      id: hold.reservationId,
      book: hold.stock?.title || hold.bookId,
      status: t(holdWord(hold.status)),
      available: hold.stock?.available ?? 0,
      held: hold.stock?.held ?? 0,
      onLoan: hold.stock?.onLoan ?? 0,
    });
  const run = async (call: (id: string) => Promise<{ hold?: Hold }>) => {
    setAnswer(undefined);
    setProblem(undefined);
    const id = reservationId.trim();
    const { value, problem } = await act(app, () => call(id));
    if (value?.hold) setAnswer(describe(value.hold));
    setProblem(problemText(app, problem));
  };
  return (
    <Page title={t("desk")}>
      <form onSubmit={(e) => e.preventDefault()} class="stacked" aria-labelledby="page-heading">
        <label for="desk-reservation">{t("reservationId")}</label>
        <input id="desk-reservation" type="text" value={reservationId} onInput={(e) => setReservationId(e.currentTarget.value)} />
        <div>
          <button type="button" onClick={() => void run((id) => app.api.stock.checkOut({ reservationId: id }))}>
            {t("checkOut")}
          </button>{" "}
          <button type="button" onClick={() => void run((id) => app.api.stock.return({ reservationId: id }))}>
            {t("return")}
          </button>
        </div>
      </form>
      <div role="status" class="answer">
        {answer ? <p>{answer}</p> : null}
        <Alert message={problem} />
      </div>
    </Page>
  );
}
