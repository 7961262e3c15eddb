;; Polyphase FIR inner loop of StreamResampler (streams/audio.ts), WebAssembly with 128-bit SIMD.
;; The bytes embedded (base64) in streams/wasm/polyphase.ts are this file assembled with wabt 1.0.39
;; (not a dependency of circumplex): in an empty folder, `npm install wabt@1.0.39`, then
;;   node --input-type=module -e "import w from 'wabt'; import {readFileSync} from 'node:fs';
;;     const m = (await w()).parseWat('p.wat', readFileSync('polyphase.wat', 'utf8'), { simd: true });
;;     console.log(Buffer.from(m.toBinary({}).buffer).toString('base64'))"
;;
;; run(x, out, n, rel, r, step, period, meta)
;;   x:      byte offset of the input samples (f32)
;;   out:    byte offset where the n outputs (f32) go
;;   rel:    for the first output k0 = q * period + r, the input index q * step relative to x[0]
;;   r:      the first output's phase, k0 mod period
;;   step:   input samples per period of outputs (fromHz * period / toHz, an integer)
;;   meta:   byte offset of `period` records of three i32: the phase's first tap relative to q * step
;;           (floor(r * fromHz / toHz) + its first tap offset), tap count, byte offset of its weights (f64)
;; Output k = q * period + r uses phase r, its taps starting at input q * step + floor(r * fromHz / toHz)
;; + first[r], which is floor(k * fromHz / toHz) + first[r] exactly (q * step is an integer), as the
;; JavaScript loop computes it; phase and position advance by counting, with no division per output.
;; Products and sums are in f64 like the JavaScript loop; taps are summed in four interleaved lanes
;; (two f64x2 accumulators, to overlap the additions), so the f64 sum can differ in its last bits (the
;; f32 result nearly never does).
(module
  (memory (export "memory") 1)
  (func (export "run")
    (param $x i32) (param $out i32) (param $n i32) (param $rel i32) (param $r i32) (param $step i32)
    (param $period i32) (param $meta i32)
    (local $o i32) (local $m i32) (local $len i32) (local $w i32) (local $xs i32)
    (local $j i32) (local $quads i32) (local $acc v128) (local $acc2 v128) (local $s f64)
    (block $done
      (loop $outputs
        (br_if $done (i32.ge_u (local.get $o) (local.get $n)))
        (local.set $m (i32.add (local.get $meta) (i32.mul (i32.const 12) (local.get $r))))
        (local.set $len (i32.load offset=4 (local.get $m)))
        (local.set $w (i32.load offset=8 (local.get $m)))
        ;; first input of the taps
        (local.set $xs (i32.add (local.get $x)
          (i32.shl (i32.add (local.get $rel) (i32.load (local.get $m))) (i32.const 2))))
        (local.set $acc (v128.const i64x2 0 0))
        (local.set $acc2 (v128.const i64x2 0 0))
        (local.set $j (i32.const 0))
        (local.set $quads (i32.and (local.get $len) (i32.const -4)))
        (block $qdone
          (loop $taps
            (br_if $qdone (i32.ge_u (local.get $j) (local.get $quads)))
            (local.set $acc (f64x2.add (local.get $acc)
              (f64x2.mul
                (v128.load (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 3))))
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $xs) (i32.shl (local.get $j) (i32.const 2))))))))
            (local.set $acc2 (f64x2.add (local.get $acc2)
              (f64x2.mul
                (v128.load offset=16 (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 3))))
                (f64x2.promote_low_f32x4 (v128.load64_zero offset=8 (i32.add (local.get $xs) (i32.shl (local.get $j) (i32.const 2))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $taps)))
        (if (i32.ge_u (i32.sub (local.get $len) (local.get $j)) (i32.const 2))
          (then
            (local.set $acc (f64x2.add (local.get $acc)
              (f64x2.mul
                (v128.load (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 3))))
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $xs) (i32.shl (local.get $j) (i32.const 2))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))))
        (local.set $acc (f64x2.add (local.get $acc) (local.get $acc2)))
        (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
        (if (i32.lt_u (local.get $j) (local.get $len))
          (then (local.set $s (f64.add (local.get $s)
            (f64.mul (f64.load (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 3))))
                     (f64.promote_f32 (f32.load (i32.add (local.get $xs) (i32.shl (local.get $j) (i32.const 2))))))))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $o) (i32.const 2))) (f32.demote_f64 (local.get $s)))
        ;; next output: next phase; after the last phase, the next period of inputs
        (local.set $r (i32.add (local.get $r) (i32.const 1)))
        (if (i32.eq (local.get $r) (local.get $period))
          (then
            (local.set $r (i32.const 0))
            (local.set $rel (i32.add (local.get $rel) (local.get $step)))))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $outputs)))))
