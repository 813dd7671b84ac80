// Every string the app shows, one table per language. The accessible names are the
// contract the browser tests find elements by (docs: notes/web-contract.md): keep them exact.

export type Lang = "en" | "ko";
export const LANGUAGES: readonly Lang[] = ["en", "ko"];
/** Each language's name in itself, for the language switcher. */
export const LANGUAGE_NAMES: Record<Lang, string> = { en: "English", ko: "한국어" };

const en = {
  appName: "bookrental",
  loading: "Loading…",
  // sign-in
  signInHeading: "Sign in",
  user: "User",
  role: "Role",
  customer: "Customer",
  stockManager: "Stock manager",
  signIn: "Sign in",
  signInWithProvider: "Sign in with your organisation",
  signOut: "Sign out",
  language: "Language",
  sessionEnded: "Please sign in again.",
  userRequired: "Enter a user id.",
  // navigation
  mainNavigation: "Main",
  books: "Books",
  myReservations: "My reservations",
  notifications: "Notifications",
  preferences: "Preferences",
  stock: "Stock",
  desk: "Desk",
  // books
  search: "Search",
  title: "Title",
  available: "Available",
  waiting: "Waiting",
  actions: "Actions",
  reserve: "Reserve",
  reserveBook: "Reserve {title}",
  joinWaitlist: "Join the waitlist if none is free",
  nextPage: "Next page",
  previousPage: "Previous page",
  noBooks: "No books found.",
  reserved: "Reservation {id} requested for {book}.",
  // reservations
  book: "Book",
  status: "Status",
  queuePosition: "Queue position",
  deadline: "Pickup deadline / due",
  reservationId: "Reservation id",
  cancel: "Cancel",
  pickupBy: "pick up by {time}",
  dueAt: "due {time}",
  noReservations: "No reservations yet.",
  canceled: "Reservation {id} canceled.",
  statusRequested: "Requested",
  statusConfirmed: "Confirmed",
  statusRejected: "Rejected",
  statusCanceled: "Canceled",
  statusWaitlisted: "Waitlisted",
  statusExpired: "Expired",
  statusPickedUp: "Picked up",
  statusReturned: "Returned",
  statusUnknown: "Unknown",
  // notifications
  noNotifications: "No notifications yet.",
  kindConfirmed: "Confirmed",
  kindRejected: "Rejected",
  kindCanceled: "Canceled",
  kindWaitlisted: "Waitlisted",
  kindReady: "Ready for pickup",
  kindExpired: "Expired",
  kindOverdue: "Overdue",
  kindReturned: "Returned",
  kindUnknown: "Notice",
  // preferences
  email: "Email",
  phone: "Phone",
  channels: "Channels",
  channelEmail: "Email",
  channelMessenger: "Messenger",
  notificationLanguage: "Language",
  notificationLanguageHint: "The language of your notifications.",
  save: "Save",
  saved: "Preferences saved.",
  // stock
  receive: "Receive",
  bookId: "Book id",
  quantity: "Quantity",
  held: "Held",
  onLoan: "On loan",
  received: "Received {quantity} of {book}: {available} available.",
  noStock: "No stock yet.",
  // desk
  checkOut: "Check out",
  return: "Return",
  holdState: "Reservation {id} ({book}): {status}; stock of {book}: {available} available, {held} held, {onLoan} on loan.",
  holdReserved: "held",
  holdRejected: "rejected",
  holdReleased: "released",
  holdCanceled: "canceled",
  holdWaiting: "waiting",
  holdOnLoan: "on loan",
  holdReturned: "returned",
  holdExpired: "expired",
  holdUnknown: "unknown",
  // errors
  unreachable: "The service is unreachable; retrying…",
  unexpected: "Something went wrong: {message}",
  reload: "Reload",
};

export type Messages = typeof en;
export type MessageKey = keyof Messages;

const ko: Messages = {
  appName: "bookrental",
  loading: "불러오는 중…",
  signInHeading: "로그인",
  user: "사용자",
  role: "역할",
  customer: "고객",
  stockManager: "재고 관리자",
  signIn: "로그인",
  signInWithProvider: "조직 계정으로 로그인",
  signOut: "로그아웃",
  language: "언어",
  sessionEnded: "다시 로그인하세요.",
  userRequired: "사용자 ID를 입력하세요.",
  mainNavigation: "메뉴",
  books: "도서",
  myReservations: "내 예약",
  notifications: "알림",
  preferences: "설정",
  stock: "재고",
  desk: "대출 창구",
  search: "검색",
  title: "제목",
  available: "대출 가능",
  waiting: "대기",
  actions: "작업",
  reserve: "예약",
  reserveBook: "{title} 예약",
  joinWaitlist: "대여 가능한 책이 없으면 대기열에 등록",
  nextPage: "다음 페이지",
  previousPage: "이전 페이지",
  noBooks: "도서가 없습니다.",
  reserved: "{book} 예약 {id}을(를) 요청했습니다.",
  book: "도서",
  status: "상태",
  queuePosition: "대기 순번",
  deadline: "수령 기한 / 반납 기한",
  reservationId: "예약 ID",
  cancel: "취소",
  pickupBy: "{time}까지 수령",
  dueAt: "{time}까지 반납",
  noReservations: "예약이 없습니다.",
  canceled: "예약 {id}을(를) 취소했습니다.",
  statusRequested: "요청됨",
  statusConfirmed: "확정됨",
  statusRejected: "거절됨",
  statusCanceled: "취소됨",
  statusWaitlisted: "대기 중",
  statusExpired: "만료됨",
  statusPickedUp: "대출 중",
  statusReturned: "반납됨",
  statusUnknown: "알 수 없음",
  noNotifications: "알림이 없습니다.",
  kindConfirmed: "확정",
  kindRejected: "거절",
  kindCanceled: "취소",
  kindWaitlisted: "대기 등록",
  kindReady: "수령 준비",
  kindExpired: "만료",
  kindOverdue: "연체",
  kindReturned: "반납",
  kindUnknown: "알림",
  email: "이메일",
  phone: "전화번호",
  channels: "알림 채널",
  channelEmail: "이메일",
  channelMessenger: "메신저",
  notificationLanguage: "언어",
  notificationLanguageHint: "알림을 받을 언어입니다.",
  save: "저장",
  saved: "설정을 저장했습니다.",
  receive: "입고",
  bookId: "도서 ID",
  quantity: "수량",
  held: "보관 중",
  onLoan: "대출 중",
  received: "{book} {quantity}권 입고: 대출 가능 {available}권.",
  noStock: "재고가 없습니다.",
  checkOut: "대출",
  return: "반납",
  holdState: "예약 {id} ({book}): {status}; {book} 재고: 대출 가능 {available}, 보관 중 {held}, 대출 중 {onLoan}.",
  holdReserved: "보관 중",
  holdRejected: "거절됨",
  holdReleased: "반환됨",
  holdCanceled: "취소됨",
  holdWaiting: "대기 중",
  holdOnLoan: "대출 중",
  holdReturned: "반납됨",
  holdExpired: "만료됨",
  holdUnknown: "알 수 없음",
  unreachable: "서비스에 연결할 수 없습니다. 다시 시도하는 중…",
  unexpected: "문제가 생겼습니다: {message}",
  reload: "새로 고침",
};

export const MESSAGES: Record<Lang, Messages> = { en, ko };

/** The message `key` in `lang`, with each {name} replaced by `values[name]`. */
export function format(lang: Lang, key: MessageKey, values: Record<string, string | number> = {}): string {
  return MESSAGES[lang][key].replace(/\{(\w+)\}/g, (whole, name: string) =>
    name in values ? String(values[name]) : whole,
  );
}

/** A language tag ("ko-KR", "en", "EN-gb") as one of ours, or undefined. */
export function languageOf(tag: string | undefined | null): Lang | undefined {
  const primary = (tag ?? "").trim().toLowerCase().split(/[-_]/)[0];
  return LANGUAGES.find((l) => l === primary);
}

/**
 * The language to show: the one chosen in the switcher (this tab), else the signed-in
 * customer's saved preference, else the browser's first language we have, else Korean.
 * `preference` is undefined while none was saved (GetPreferences' defaults are no choice).
 */
export function chooseLanguage(options: {
  chosen?: string | null;
  preference?: string | null;
  browser?: readonly string[];
}): Lang {
  const fromBrowser = (options.browser ?? []).map(languageOf).find((l) => l !== undefined);
  return languageOf(options.chosen) ?? languageOf(options.preference) ?? fromBrowser ?? "ko";
}
