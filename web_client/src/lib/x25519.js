// X25519 (RFC 7748) from @noble/curves' audited Montgomery ladder
// (abstract/montgomery.js), built exactly as that module documents it.
// @noble/curves' own `x25519` export is the same ladder plus a faster
// fixed-base multiplication through the Edwards curve; that path pulls
// edwards.js and its tables into the bundle (~6 KB brotli more) for a
// speed-up the page does not need (one key pair per conversation).
// Low-order peer keys are refused by the ladder itself (see e2e.js
// sessionKeys); tests/browser/test_bundle_crypto.py checks both against
// PyNaCl.
import "./compat.js";
import { pow } from "@noble/curves/abstract/modular.js";
import { montgomery } from "@noble/curves/abstract/montgomery.js";

const P = 2n ** 255n - 19n;

export const x25519 = montgomery({
  P,
  type: "x25519",
  // RFC 7748 section 5: clear the three low bits and the top bit, set bit 254.
  adjustScalarBytes(bytes) {
    bytes[0] &= 248;
    bytes[31] &= 127;
    bytes[31] |= 64;
    return bytes;
  },
  // Inversion by Fermat's little theorem; the exponent is public.
  powPminus2: (x) => pow(x, P - 2n, P),
});
