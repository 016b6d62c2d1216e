// `cap` 0.2.1 ships no type declarations; src/live/cap-module.ts describes the part connscope uses.
declare module 'cap' {
  const cap: unknown;
  export default cap;
}
