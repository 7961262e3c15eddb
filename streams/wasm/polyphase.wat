;; Polyphase FIR inner loop of StreamResampler (streams/audio.ts), WebAssembly with 128-bit SIMD.
;; The bytes embedded (base64) in streams/wasm/polyphase.ts are this file assembled with wabt 1.0.39
;; (not a dependency of circumplex): in an empty folder, `npm install wabt@1.0.39`, then
;;   node --input-type=module -e "import w from 'wabt'; import {readFileSync} from 'node:fs';
;;     const m = (await w()).parseWat('p.wat', readFileSync('polyphase.wat', 'utf8'), { simd: true });
;;     console.log(Buffer.from(m.toBinary({}).buffer).toString('base64'))"
;;
;; run(x, out, n, k0, fromHz, toHz, base, period, meta)
;;   x:      byte offset of the input samples (f32); x[0] is input sample `base`
;;   out:    byte offset where the n outputs (f32) go
;;   k0:     index of the first output (an integer in f64: exact to 2^53)
;;   meta:   byte offset of `period` records of three i32: first tap offset, tap count, byte offset of
;;           that phase's weights (f64)
;; Output k uses phase r = k mod period, its taps starting at input floor(k * fromHz / toHz) + first[r]
;; (the same f64 arithmetic as the JavaScript loop). Products and sums are in f64 like the
;; JavaScript loop; taps are summed in two interleaved lanes, so the f64 sum can differ in its last
;; bits (the f32 result nearly never does).
(module
  (memory (export "memory") 1)
  (func (export "run")
    (param $x i32) (param $out i32) (param $n i32) (param $k0 f64) (param $from f64) (param $to f64)
    (param $base f64) (param $period i32) (param $meta i32)
    (local $o i32) (local $k f64) (local $m i32) (local $len i32) (local $w i32) (local $xs i32)
    (local $j i32) (local $pairs i32) (local $acc v128) (local $s f64)
    (block $done
      (loop $outputs
        (br_if $done (i32.ge_u (local.get $o) (local.get $n)))
        (local.set $k (f64.add (local.get $k0) (f64.convert_i32_u (local.get $o))))
        (local.set $m (i32.add (local.get $meta)
          (i32.mul (i32.const 12)
            (i32.wrap_i64 (i64.rem_u (i64.trunc_f64_u (local.get $k)) (i64.extend_i32_u (local.get $period)))))))
        (local.set $len (i32.load offset=4 (local.get $m)))
        (local.set $w (i32.load offset=8 (local.get $m)))
        ;; first input of the taps, relative to x[0]
        (local.set $xs (i32.add (local.get $x) (i32.shl
          (i32.trunc_f64_s (f64.sub
            (f64.add (f64.floor (f64.div (f64.mul (local.get $k) (local.get $from)) (local.get $to)))
                     (f64.convert_i32_s (i32.load (local.get $m))))
            (local.get $base)))
          (i32.const 2))))
        (local.set $acc (v128.const i64x2 0 0))
        (local.set $j (i32.const 0))
        (local.set $pairs (i32.and (local.get $len) (i32.const -2)))
        (block $pdone
          (loop $taps
            (br_if $pdone (i32.ge_u (local.get $j) (local.get $pairs)))
            (local.set $acc (f64x2.add (local.get $acc)
              (f64x2.mul
                (v128.load (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 3))))
                (f64x2.promote_low_f32x4 (v128.load64_zero (i32.add (local.get $xs) (i32.shl (local.get $j) (i32.const 2))))))))
            (local.set $j (i32.add (local.get $j) (i32.const 2)))
            (br $taps)))
        (local.set $s (f64.add (f64x2.extract_lane 0 (local.get $acc)) (f64x2.extract_lane 1 (local.get $acc))))
        (if (i32.and (local.get $len) (i32.const 1))
          (then (local.set $s (f64.add (local.get $s)
            (f64.mul (f64.load (i32.add (local.get $w) (i32.shl (local.get $j) (i32.const 3))))
                     (f64.promote_f32 (f32.load (i32.add (local.get $xs) (i32.shl (local.get $j) (i32.const 2))))))))))
        (f32.store (i32.add (local.get $out) (i32.shl (local.get $o) (i32.const 2))) (f32.demote_f64 (local.get $s)))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $outputs)))))
