// A counsellor's console that lost its keys (a reload, a crashed laptop)
// came back under a new key (docs/protocol.md, "Re-attach after a reload").
// What the server held for the lost key was dropped unopened; the youth's
// page and a liaison's send those messages again under the new epoch. While
// the counsellor's page is gone (presence), what this page sends waits on the
// server for them: it is shown as "not yet delivered" (state "held"), not
// "sent".

/** The `undelivered` span of a roster push, or null: {first, last}, inclusive. */
export function undeliveredSpan(data) {
  const span = data && data.undelivered;
  if (!span || !Number.isSafeInteger(span.first) || !Number.isSafeInteger(span.last)) return null;
  return span.first >= 1 && span.first <= span.last ? span : null;
}

/**
 * Send again, with new seqs under the current roster, this page's messages
 * whose seqs were dropped: the Outbox gives each the next seq in turn.
 * Returns how many went back into the Outbox.
 */
export function resendUndelivered(items, outbox, span) {
  if (!outbox || !span) return 0;
  let n = 0;
  for (const item of items) {
    if (item.kind !== "out" || !(item.state === "sent" || item.state === "held")) continue;
    if (!Number.isSafeInteger(item.seq) || item.seq < span.first || item.seq > span.last) continue;
    item.seq = undefined;
    outbox.push(item);
    n += 1;
  }
  return n;
}

/**
 * The counsellor is back (or gone for good): held messages change state.
 * `to` is "sent" (they reach the counsellor now) or "failed" (the seat went
 * with its buffer: "not sent", with "try again"). onChange(item) redraws one.
 */
export function settleHeld(items, to, onChange) {
  for (const item of items) {
    if (item.kind !== "out" || item.state !== "held") continue;
    item.state = to;
    if (to === "failed") item.seq = undefined;
    onChange(item);
  }
}

/** An Outbox state change while the counsellor is away: "sent" means "held" then. */
export function holdIfAway(item, away) {
  if (away && item.kind === "out" && item.state === "sent") item.state = "held";
}
