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

declare const exportOnlyInBinding: Exclude<keyof typeof binding, keyof typeof typed>;
declare const exportOnlyInTyped: Exclude<keyof typeof typed, keyof typeof binding>;
declare const functionArity: ArityMismatch<typeof binding, typeof typed>;
export const exportsMissingFromIndexDts: never = exportOnlyInBinding;
export const exportsNotInTheBinding: never = exportOnlyInTyped;
export const functionsWithOtherParameterCounts: never = functionArity;
declare const vlmExportOnlyInBinding: Exclude<keyof typeof bindingVlm, keyof typeof typedVlm>;
declare const vlmExportOnlyInTyped: Exclude<keyof typeof typedVlm, keyof typeof bindingVlm>;
declare const vlmFunctionArity: ArityMismatch<typeof bindingVlm, typeof typedVlm>;
export const exportsMissingFromVlmDts: never = vlmExportOnlyInBinding;
export const exportsNotInTheVlmBinding: never = vlmExportOnlyInTyped;
export const vlmFunctionsWithOtherParameterCounts: never = vlmFunctionArity;

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
