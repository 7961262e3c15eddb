/**
 * Mulberry32: a tiny seeded PRNG, so fixture weights and held-out splits are the same on every
 * machine and Node version (Math.random cannot be seeded). Pure, no imports: shared by the ONNX
 * fixture builder (models/) and `validate` (src/); {@link gaussianFrom} turns it into normal draws.
 */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw from two draws of `uniform` (Box–Muller, cosine branch; 1e-12 keeps log finite at 0). */
export function gaussianFrom(uniform: () => number): number {
  return Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}
