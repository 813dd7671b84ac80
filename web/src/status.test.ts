import { NotificationKind } from "@gen/bookrental/alert/v1/alert_pb";
import { ReservationStatus } from "@gen/bookrental/reservation/v1/reservation_pb";
import { HoldStatus } from "@gen/bookrental/stock/v1/stock_pb";
import { describe, expect, it } from "vitest";
import { format } from "./i18n";
import { canCancel, FAST_POLL_MS, holdWord, kindWord, pollInterval, SLOW_POLL_MS, statusWord } from "./status";

describe("status words", () => {
  // The words of the contract (notes/web-contract.md), per generated enum value.
  const words: [ReservationStatus, string, string][] = [
    [ReservationStatus.REQUESTED, "Requested", "요청됨"],
    [ReservationStatus.CONFIRMED, "Confirmed", "확정됨"],
    [ReservationStatus.REJECTED, "Rejected", "거절됨"],
    [ReservationStatus.CANCELED, "Canceled", "취소됨"],
    [ReservationStatus.WAITLISTED, "Waitlisted", "대기 중"],
    [ReservationStatus.EXPIRED, "Expired", "만료됨"],
    [ReservationStatus.PICKED_UP, "Picked up", "대출 중"],
    [ReservationStatus.RETURNED, "Returned", "반납됨"],
  ];
  it.each(words)("status %i is %s / %s", (status, en, ko) => {
    expect(format("en", statusWord(status))).toBe(en);
    expect(format("ko", statusWord(status))).toBe(ko);
  });

  it("gives every value of the generated enum a word of its own", () => {
    const values = Object.values(ReservationStatus).filter((v): v is ReservationStatus => typeof v === "number");
    const named = values.filter((v) => v !== ReservationStatus.UNSPECIFIED).map((v) => format("en", statusWord(v)));
    expect(new Set(named).size).toBe(values.length - 1);
    expect(named).not.toContain("Unknown");
  });

  it("says Unknown for a status newer than this app", () => {
    expect(format("en", statusWord(99 as ReservationStatus))).toBe("Unknown");
  });
});

describe("cancel", () => {
  it("is offered while the reservation is requested, waitlisted or confirmed", () => {
    expect(canCancel(ReservationStatus.REQUESTED)).toBe(true);
    expect(canCancel(ReservationStatus.WAITLISTED)).toBe(true);
    expect(canCancel(ReservationStatus.CONFIRMED)).toBe(true);
  });
  it("is not offered for a loan (returned at the desk) nor after the end", () => {
    for (const s of [
      ReservationStatus.PICKED_UP,
      ReservationStatus.RETURNED,
      ReservationStatus.REJECTED,
      ReservationStatus.CANCELED,
      ReservationStatus.EXPIRED,
    ]) {
      expect(canCancel(s), ReservationStatus[s]).toBe(false);
    }
  });
});

describe("poll interval", () => {
  it("is fast enough to show stock's decision within a second while any reservation is requested", () => {
    expect(pollInterval([ReservationStatus.CONFIRMED, ReservationStatus.REQUESTED])).toBe(FAST_POLL_MS);
    expect(FAST_POLL_MS).toBeLessThanOrEqual(500);
  });
  it("slows to a few seconds when nothing awaits stock", () => {
    expect(pollInterval([])).toBe(SLOW_POLL_MS);
    expect(pollInterval([ReservationStatus.WAITLISTED, ReservationStatus.CONFIRMED])).toBe(SLOW_POLL_MS);
    expect(SLOW_POLL_MS).toBeGreaterThanOrEqual(2000);
    expect(SLOW_POLL_MS).toBeLessThanOrEqual(3000);
  });
});

describe("hold and notification words", () => {
  it("give every value of the generated HoldStatus and NotificationKind enums a word", () => {
    for (const [values, word] of [
      [Object.values(HoldStatus), (v: number) => format("en", holdWord(v as HoldStatus))],
      [Object.values(NotificationKind), (v: number) => format("ko", kindWord(v as NotificationKind))],
    ] as const) {
      const numbers = values.filter((v): v is number => typeof v === "number" && v !== 0);
      const words = numbers.map(word);
      expect(new Set(words).size).toBe(numbers.length);
      expect(words.every((w) => w !== "" && !w.includes("{"))).toBe(true);
    }
    expect(format("en", holdWord(HoldStatus.ON_LOAN))).toBe("on loan");
    expect(format("ko", kindWord(NotificationKind.READY))).toBe("수령 준비");
  });
});
