// Words and rules for the generated enums: a reservation's status as a word, whether it
// can be canceled, and how often the reservations page polls.
import { NotificationKind } from "@gen/bookrental/alert/v1/alert_pb";
import { ReservationStatus } from "@gen/bookrental/reservation/v1/reservation_pb";
import { HoldStatus } from "@gen/bookrental/stock/v1/stock_pb";
import type { MessageKey } from "./i18n";

const STATUS_WORDS: Record<ReservationStatus, MessageKey> = {
  [ReservationStatus.UNSPECIFIED]: "statusUnknown",
  [ReservationStatus.REQUESTED]: "statusRequested",
  [ReservationStatus.CONFIRMED]: "statusConfirmed",
  [ReservationStatus.REJECTED]: "statusRejected",
  [ReservationStatus.CANCELED]: "statusCanceled",
  [ReservationStatus.WAITLISTED]: "statusWaitlisted",
  [ReservationStatus.PICKED_UP]: "statusPickedUp",
  [ReservationStatus.RETURNED]: "statusReturned",
  [ReservationStatus.EXPIRED]: "statusExpired",
};

/** The message key of a reservation status's word (a value newer than this app: "Unknown"). */
export function statusWord(status: ReservationStatus): MessageKey {
  return STATUS_WORDS[status] ?? "statusUnknown";
}

const KIND_WORDS: Record<NotificationKind, MessageKey> = {
  [NotificationKind.UNSPECIFIED]: "kindUnknown",
  [NotificationKind.CONFIRMED]: "kindConfirmed",
  [NotificationKind.REJECTED]: "kindRejected",
  [NotificationKind.CANCELED]: "kindCanceled",
  [NotificationKind.WAITLISTED]: "kindWaitlisted",
  [NotificationKind.READY]: "kindReady",
  [NotificationKind.EXPIRED]: "kindExpired",
  [NotificationKind.OVERDUE]: "kindOverdue",
  [NotificationKind.RETURNED]: "kindReturned",
};

export function kindWord(kind: NotificationKind): MessageKey {
  return KIND_WORDS[kind] ?? "kindUnknown";
}

const HOLD_WORDS: Record<HoldStatus, MessageKey> = {
  [HoldStatus.UNSPECIFIED]: "holdUnknown",
  [HoldStatus.RESERVED]: "holdReserved",
  [HoldStatus.REJECTED]: "holdRejected",
  [HoldStatus.RELEASED]: "holdReleased",
  [HoldStatus.CANCELED]: "holdCanceled",
  [HoldStatus.WAITING]: "holdWaiting",
  [HoldStatus.ON_LOAN]: "holdOnLoan",
  [HoldStatus.RETURNED]: "holdReturned",
  [HoldStatus.EXPIRED]: "holdExpired",
};

export function holdWord(status: HoldStatus): MessageKey {
  return HOLD_WORDS[status] ?? "holdUnknown";
}

/**
 * CancelReservation withdraws REQUESTED, WAITLISTED and CONFIRMED reservations; a PICKED_UP
 * one must be returned at the desk, and the others have ended.
 */
export function canCancel(status: ReservationStatus): boolean {
  return (
    status === ReservationStatus.REQUESTED ||
    status === ReservationStatus.WAITLISTED ||
    status === ReservationStatus.CONFIRMED
  );
}

/** While stock has not decided a reservation, poll fast enough to show the decision within a second. */
export const FAST_POLL_MS = 400;
/** Otherwise changes come from people (a desk check-out, a copy freed for the queue): poll slower. */
export const SLOW_POLL_MS = 2500;

export function pollInterval(statuses: readonly ReservationStatus[]): number {
  return statuses.includes(ReservationStatus.REQUESTED) ? FAST_POLL_MS : SLOW_POLL_MS;
}
