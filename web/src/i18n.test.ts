import { describe, expect, it } from "vitest";
import { chooseLanguage, format, languageOf, MESSAGES } from "./i18n";

describe("language choice", () => {
  it("takes the language chosen in this tab first", () => {
    expect(chooseLanguage({ chosen: "en", preference: "ko", browser: ["ko-KR"] })).toBe("en");
  });
  it("takes the customer's saved preference over the browser's", () => {
    expect(chooseLanguage({ preference: "en", browser: ["ko-KR"] })).toBe("en");
    expect(chooseLanguage({ preference: "ko", browser: ["en-US"] })).toBe("ko");
  });
  it("takes the browser's first language we have", () => {
    expect(chooseLanguage({ browser: ["en-GB", "ko"] })).toBe("en");
    expect(chooseLanguage({ browser: ["ko-KR", "en"] })).toBe("ko");
    expect(chooseLanguage({ browser: ["fr-FR", "EN_us"] })).toBe("en");
  });
  it("falls back to Korean", () => {
    expect(chooseLanguage({ browser: ["fr-FR", "de"] })).toBe("ko");
    expect(chooseLanguage({})).toBe("ko");
    expect(chooseLanguage({ chosen: "xx", preference: "" })).toBe("ko");
  });
  it("reads language tags by their primary subtag only", () => {
    expect(languageOf("ko-KR")).toBe("ko");
    expect(languageOf(" EN ")).toBe("en");
    expect(languageOf("kok")).toBeUndefined();
    expect(languageOf(undefined)).toBeUndefined();
  });
});

describe("message tables", () => {
  it("have the same keys in both languages, none empty", () => {
    expect(Object.keys(MESSAGES.ko).sort()).toEqual(Object.keys(MESSAGES.en).sort());
    for (const table of Object.values(MESSAGES)) {
      for (const [key, text] of Object.entries(table)) expect(text, key).not.toBe("");
    }
  });
  it("use the same {placeholders} in both languages", () => {
    const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(MESSAGES.en) as (keyof typeof MESSAGES.en)[]) {
      expect(names(MESSAGES.ko[key]), key).toEqual(names(MESSAGES.en[key]));
    }
  });
  it("hold the contract's accessible names", () => {
    const names: [keyof typeof MESSAGES.en, string, string][] = [
      ["user", "User", "사용자"],
      ["customer", "Customer", "고객"],
      ["stockManager", "Stock manager", "재고 관리자"],
      ["signIn", "Sign in", "로그인"],
      ["signOut", "Sign out", "로그아웃"],
      ["language", "Language", "언어"],
      ["books", "Books", "도서"],
      ["myReservations", "My reservations", "내 예약"],
      ["notifications", "Notifications", "알림"],
      ["preferences", "Preferences", "설정"],
      ["stock", "Stock", "재고"],
      ["desk", "Desk", "대출 창구"],
      ["search", "Search", "검색"],
      ["title", "Title", "제목"],
      ["available", "Available", "대출 가능"],
      ["waiting", "Waiting", "대기"],
      ["reserve", "Reserve", "예약"],
      ["joinWaitlist", "Join the waitlist if none is free", "대여 가능한 책이 없으면 대기열에 등록"],
      ["nextPage", "Next page", "다음 페이지"],
      ["previousPage", "Previous page", "이전 페이지"],
      ["cancel", "Cancel", "취소"],
      ["email", "Email", "이메일"],
      ["phone", "Phone", "전화번호"],
      ["save", "Save", "저장"],
      ["receive", "Receive", "입고"],
      ["bookId", "Book id", "도서 ID"],
      ["quantity", "Quantity", "수량"],
      ["book", "Book", "도서"],
      ["held", "Held", "보관 중"],
      ["onLoan", "On loan", "대출 중"],
      ["reservationId", "Reservation id", "예약 ID"],
      ["checkOut", "Check out", "대출"],
      ["return", "Return", "반납"],
      ["unreachable", "The service is unreachable; retrying…", "서비스에 연결할 수 없습니다. 다시 시도하는 중…"],
    ];
    for (const [key, en, ko] of names) {
      expect(MESSAGES.en[key], key).toBe(en);
      expect(MESSAGES.ko[key], key).toBe(ko);
    }
  });
  it("name each book's Reserve button with its title, in both languages", () => {
    expect(format("en", "reserveBook", { title: "Momo" })).toBe("Reserve Momo");
    expect(format("ko", "reserveBook", { title: "Momo" })).toContain("예약");
    expect(format("ko", "reserveBook", { title: "Momo" })).toContain("Momo");
  });
  it("leaves a placeholder with no value visible rather than inventing one", () => {
    expect(format("en", "dueAt")).toBe("due {time}");
  });
});
