// The one built-in newer than the browsers the build targets (Chrome 80,
// Firefox 78, Safari 15) that the bundled @noble code calls: Object.hasOwn
// (Chrome 93, Firefox 92, Safari 15.4), from its option checks, some of them
// at module load. Without it the crypto, and so the page, would fail on
// phones a few years old. Imported first by every module that imports
// @noble, so it is in place before their code runs. (noble detects and
// falls back by itself for Uint8Array.fromHex/toHex.)
if (typeof Object.hasOwn !== "function") {
  Object.defineProperty(Object, "hasOwn", {
    value: (object, key) => Object.prototype.hasOwnProperty.call(object, key),
    configurable: true,
    writable: true,
  });
}
