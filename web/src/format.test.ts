import { describe, expect, it } from "vitest";
import { barWidth, formatPrice, formatSignedTokens, formatTokens, mtToDecimal } from "./format";

describe("formatTokens", () => {
  it.each([
    ["0", "0"],
    ["500", "500"],
    ["6500", "6,500"],
    ["1999.9", "1,999.9"],
    ["1234567.125", "1,234,567.125"],
    ["-100", "-100"],
    ["-0", "0"],
    ["12345678901234567890.5", "12,345,678,901,234,567,890.5"],
    ["not a number", "not a number"],
  ])("%s -> %s", (amount, shown) => {
    expect(formatTokens(amount)).toBe(shown);
  });

  it("keeps every digit of amounts a float would round", () => {
    expect(formatTokens("9007199254740993.001")).toBe("9,007,199,254,740,993.001");
  });
});

describe("formatSignedTokens", () => {
  it("marks credits with + and leaves debits and zero alone", () => {
    expect(formatSignedTokens("6500")).toBe("+6,500");
    expect(formatSignedTokens("-0.5")).toBe("-0.5");
    expect(formatSignedTokens("0")).toBe("0");
  });
});

describe("formatPrice", () => {
  it.each([
    [4900, "usd", "$49"],
    [1900, "usd", "$19"],
    [4950, "usd", "$49.50"],
    [5, "usd", "$0.05"],
    [123456, "usd", "$1,234.56"],
    [4900, "eur", "€49"],
    [4900, "chf", "49 CHF"],
  ])("%i %s -> %s", (cents, currency, shown) => {
    expect(formatPrice(cents, currency)).toBe(shown);
  });
});

describe("mtToDecimal", () => {
  it.each([
    [6500000, "6500"],
    [1500, "1.5"],
    [1, "0.001"],
    [-100000, "-100"],
    [0, "0"],
  ])("%i -> %s", (mt, decimal) => {
    expect(mtToDecimal(mt)).toBe(decimal);
  });
});

describe("barWidth", () => {
  it("is a share of the largest, at least 1% when there is any", () => {
    expect(barWidth(50, 100)).toBe("50%");
    expect(barWidth(1, 100000)).toBe("1%");
    expect(barWidth(0, 100)).toBe("0%");
    expect(barWidth(5, 0)).toBe("0%");
  });
});
