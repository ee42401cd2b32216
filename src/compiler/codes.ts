/**
 * Every diagnostic the compiler reports has a stable code (shown as `error[E031]`), a short name
 * and a fixed severity. Codes are never reused or renumbered; docs/language.md lists them, and
 * test/compiler/codes.test.ts has one pipeline snippet per code.
 */
export interface CodeInfo {
  name: string;
  severity: 'error' | 'warning';
}

const e = (name: string): CodeInfo => ({ name, severity: 'error' });
const w = (name: string): CodeInfo => ({ name, severity: 'warning' });

export const CODES = {
  // syntax (src/compiler/parse.ts)
  E001: e('not-text'),
  E002: e('unexpected-character'),
  E003: e('unterminated-string'),
  E004: e('unknown-statement'),
  E005: e('syntax'),
  E006: e('division-by-zero'),
  E007: e('bad-number'),
  // the program as a whole
  E010: e('nothing-to-compute'),
  E011: e('duplicate-statement'),
  // parameters (src/compiler/params.ts)
  E020: e('unknown-parameter'),
  E021: e('duplicate-parameter'),
  E022: e('bad-value'),
  E023: e('out-of-range'),
  E024: e('not-sweepable'),
  E025: e('bad-range'),
  E026: e('sweep-too-large'),
  E027: e('single-attack-expected'),
  // names and references (src/compiler/check/linker.ts)
  E030: e('duplicate-declaration'),
  E031: e('builtin-attack-redefined'),
  E032: e('reserved-member-name'),
  E033: e('unknown-attack'),
  E034: e('attack-cycle'),
  E035: e('unknown-name'),
  E036: e('selects-nothing'),
  E037: e('wrong-kind'),
  E038: e('unknown-model'),
  E039: e('family-not-model'),
  E040: e('finetune-cycle'),
  // settings and datasets
  E041: e('unknown-backend'),
  E042: e('unknown-dataset'),
  E043: e('dataset-too-small'),
  E044: e('dataset-needs-path'),
  // models
  E050: e('unknown-architecture'),
  E051: e('unknown-method'),
  E052: e('train-sweep'),
  E053: e('unknown-quant-target'),
  E054: e('duplicate-quant'),
  E055: e('bad-quant'),
  E056: e('unknown-noise-target'),
  E057: e('duplicate-noise'),
  E058: e('bad-noise'),
  E059: e('attack-not-trainable'),
  E060: e('too-few-attacks'),
  E061: e('pair-not-two'),
  // imported weights (weights=; the file is read by src/runtime/models/inspect-weights.ts)
  E062: e('weights-with-training'),
  E063: e('weights-unreadable'),
  E064: e('weights-missing-tensor'),
  E065: e('weights-extra-tensor'),
  E066: e('weights-bad-tensor'),
  // ensembles
  E070: e('ensemble-needs-name'),
  E071: e('trend-only-parameter'),
  E072: e('ensemble-too-small'),
  E073: e('default-name-taken'),
  E074: e('trend-ambiguous'),
  E075: e('trend-no-transfer'),
  E076: e('trend-uncovered'),
  E077: e('trend-cycle'),
  E078: e('trend-k'),
  // experiments
  E080: e('transfer-ensemble-attack'),
  E081: e('epgd-needs-sd'),
  E082: e('attack-target-mismatch'),
  E083: e('with-needs-attacks'),
  E084: e('union-too-few'),
  E085: e('union-sweep'),
  // warnings: written, but without effect where written
  W001: w('topk-not-l1'),
  W002: w('bpda-not-halftone'),
  W003: w('qstats-not-bits'),
  W004: w('beta-without-gp'),
  W005: w('sgd-only'),
  W006: w('average-not-soft'),
} as const satisfies Record<string, CodeInfo>;

export type Code = keyof typeof CODES;
