// The package's entry: the wasm-bindgen bindings, ready to use on import
// (see roomcast.js).
export * from "./roomcast_bg.js";
