/**
 * The program's clock, read once per run to tell which key-rotation period a run falls in (the
 * tls provider reads the same wall clock for early renewal). Tests set `now` to play a run later.
 */
export const clock = { now: (): number => Date.now() };
