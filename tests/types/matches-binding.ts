// The typed API (package/index.d.ts, package/vlm.d.ts) against what wasm-bindgen generated from
// the Rust binding (pkg/emolens.d.ts, pkg/emolens_vlm.d.ts, every option and result `any`): the same exports, the same members of each
// class, the same number of parameters. A mismatch fails `tsc` with the names in the message.
import type * as typed from 'emolens';
import type * as binding from '../../pkg/emolens.js';
import type * as typedVlm from 'emolens/vlm';
import type * as bindingVlm from '../../pkg/emolens_vlm.js';

type Arity<F> = F extends (...args: infer A) => unknown
  ? Required<A>['length']
  : F extends abstract new (...args: infer A) => unknown
    ? Required<A>['length']
    : 'not a function';
/** Names in both whose parameter counts differ. */
type ArityMismatch<B, T> = {
  [K in keyof B & keyof T]: [Arity<B[K]>] extends [Arity<T[K]>] ? ([Arity<T[K]>] extends [Arity<B[K]>] ? never : K) : K;
}[keyof B & keyof T];

/** Per module: exports on one side only, and functions whose parameter counts differ. */
type ModuleMismatch<B, T> = {
  exportsOnlyInTheBinding: Exclude<keyof B, keyof T>;
  exportsOnlyInTheTypes: Exclude<keyof T, keyof B>;
  functionsWithOtherParameterCounts: ArityMismatch<B, T>;
};
type Agrees = { [K in keyof ModuleMismatch<unknown, unknown>]: never };
declare const indexDts: ModuleMismatch<typeof binding, typeof typed>;
declare const vlmDts: ModuleMismatch<typeof bindingVlm, typeof typedVlm>;
export const indexDtsMatchesTheBinding: Agrees = indexDts;
export const vlmDtsMatchesTheBinding: Agrees = vlmDts;

/** Instance and static members present on one side only, or with other parameter counts. */
type ClassMismatch<B, T> =
  | Exclude<keyof B, keyof T>
  | Exclude<keyof T, keyof B>
  | ArityMismatch<B, T>;
declare const analyzer: ClassMismatch<binding.Analyzer, typed.Analyzer> | ClassMismatch<typeof binding.Analyzer, typeof typed.Analyzer>;
declare const liveCapture: ClassMismatch<binding.LiveCapture, typed.LiveCapture> | ClassMismatch<typeof binding.LiveCapture, typeof typed.LiveCapture>;
declare const liveSession: ClassMismatch<binding.LiveSession, typed.LiveSession> | ClassMismatch<typeof binding.LiveSession, typeof typed.LiveSession>;
declare const localVlm: ClassMismatch<bindingVlm.LocalVlm, typedVlm.LocalVlm> | ClassMismatch<typeof bindingVlm.LocalVlm, typeof typedVlm.LocalVlm>;
export const analyzerMembersDiffer: never = analyzer;
export const liveCaptureMembersDiffer: never = liveCapture;
export const liveSessionMembersDiffer: never = liveSession;
export const localVlmMembersDiffer: never = localVlm;
