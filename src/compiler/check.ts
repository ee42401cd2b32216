/** The checker (src/compiler/check/): linker, builder and validation checks. Callers import it from here. */
export { ATTACK_ALIASES, check, distinguish, type CheckResult } from './check/index.js';
