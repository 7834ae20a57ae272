//! The linear classifier: a multi-class passive-aggressive learner (PA-I, Crammer et al.
//! 2006, "Online Passive-Aggressive Algorithms") with weight averaging, over sparse hashed
//! features. Training touches only the true and the best wrong class per example, so it
//! runs in well under a second on the whole catalogue; scores become probabilities with a
//! temperature-scaled softmax (Guo et al. 2017, "On Calibration of Modern Neural Networks").

use super::features::{Feature, FeatureMap};

/// Training settings.
#[derive(Debug, Clone, Copy)]
pub struct TrainConfig {
    pub epochs: usize,
    /// PA-I aggressiveness (upper bound of one step).
    pub c: f32,
    /// Required score margin between the true class and the best other one.
    pub margin: f32,
    pub seed: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: 8,
            c: 0.2,
            margin: 1.0,
            seed: 0x5eed_cafe,
        }
    }
}

/// A trained model: feature → row of class weights.
#[derive(Debug, Clone)]
pub struct LinearModel {
    classes: usize,
    vocab: FeatureMap<u32>,
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// Small deterministic PRNG (splitmix64) for shuffling.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl LinearModel {
    /// Trains on `(features, class)` examples.
    pub fn train(
        examples: &[(Vec<Feature>, usize)],
        classes: usize,
        cfg: TrainConfig,
    ) -> LinearModel {
        let mut vocab: FeatureMap<u32> = FeatureMap::default();
        let indexed: Vec<(Vec<(u32, f32)>, usize)> = examples
            .iter()
            .filter(|(_, y)| *y < classes)
            .map(|(f, y)| {
                let row = f
                    .iter()
                    .map(|&(h, v)| {
                        let next = vocab.len() as u32;
                        (*vocab.entry(h).or_insert(next), v)
                    })
                    .collect();
                (row, *y)
            })
            .collect();
        let dim = vocab.len() * classes;
        let mut w = vec![0f32; dim];
        let mut acc = vec![0f32; dim];
        let mut b = vec![0f32; classes];
        let mut b_acc = vec![0f32; classes];
        let mut order: Vec<usize> = (0..indexed.len()).collect();
        let mut rng = SplitMix(cfg.seed);
        let mut scores = vec![0f32; classes];
        let mut step: f32 = 1.0;
        // The hot loops index slices with `while` (no iterator calls), so that training
        // stays fast in unoptimised (debug) builds too: the server trains at start-up.
        let ws: &mut [f32] = &mut w;
        let accs: &mut [f32] = &mut acc;
        let sc: &mut [f32] = &mut scores;
        for _ in 0..cfg.epochs {
            for i in (1..order.len()).rev() {
                let j = (rng.next() % (i as u64 + 1)) as usize;
                order.swap(i, j);
            }
            for &k in &order {
                let (x, y) = &indexed[k];
                let y = *y;
                let xs: &[(u32, f32)] = x;
                sc.copy_from_slice(&b);
                let mut fi = 0;
                while fi < xs.len() {
                    let (f, v) = xs[fi];
                    let base = f as usize * classes;
                    let mut c = 0;
                    while c < classes {
                        sc[c] += ws[base + c] * v;
                        c += 1;
                    }
                    fi += 1;
                }
                let mut r = usize::MAX;
                let mut best = f32::NEG_INFINITY;
                let mut c = 0;
                while c < classes {
                    if c != y && sc[c] > best {
                        best = sc[c];
                        r = c;
                    }
                    c += 1;
                }
                if r != usize::MAX {
                    let loss = cfg.margin - (sc[y] - best);
                    if loss > 0.0 {
                        // ‖x‖² = 1 (+1 for the bias), for both classes' updates.
                        let tau = (loss / 4.0).min(cfg.c);
                        let mut fi = 0;
                        while fi < xs.len() {
                            let (f, v) = xs[fi];
                            let base = f as usize * classes;
                            ws[base + y] += tau * v;
                            ws[base + r] -= tau * v;
                            accs[base + y] += step * tau * v;
                            accs[base + r] -= step * tau * v;
                            fi += 1;
                        }
                        b[y] += tau;
                        b[r] -= tau;
                        b_acc[y] += step * tau;
                        b_acc[r] -= step * tau;
                    }
                }
                step += 1.0;
            }
        }
        // Averaged weights: w − acc / step.
        for (wv, a) in w.iter_mut().zip(&acc) {
            *wv -= a / step;
        }
        for (bv, a) in b.iter_mut().zip(&b_acc) {
            *bv -= a / step;
        }
        LinearModel {
            classes,
            vocab,
            weights: w,
            bias: b,
        }
    }

    pub fn classes(&self) -> usize {
        self.classes
    }

    /// Number of distinct features seen in training.
    pub fn vocabulary(&self) -> usize {
        self.vocab.len()
    }

    /// Raw class scores (unknown features ignored).
    pub fn scores(&self, x: &[Feature], out: &mut Vec<f32>) {
        out.clear();
        out.extend_from_slice(&self.bias);
        let o: &mut [f32] = out;
        let w: &[f32] = &self.weights;
        let classes = self.classes;
        for &(h, v) in x {
            if let Some(&f) = self.vocab.get(&h) {
                let base = f as usize * classes;
                let mut c = 0;
                while c < classes {
                    o[c] += w[base + c] * v;
                    c += 1;
                }
            }
        }
    }
}

/// Temperature-scaled softmax in place.
pub fn softmax(scores: &mut [f32], temperature: f32) {
    let t = temperature.max(1e-3);
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = ((*s - max) / t).exp();
        sum += *s;
    }
    if sum > 0.0 {
        for s in scores.iter_mut() {
            *s /= sum;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn separates_two_classes_and_softmax_sums_to_one() {
        let ex = vec![
            (vec![(1u64, 1.0f32)], 0usize),
            (vec![(2u64, 1.0f32)], 1usize),
            (vec![(1u64, 0.7f32), (3u64, 0.7f32)], 0usize),
        ];
        let m = LinearModel::train(&ex, 2, TrainConfig::default());
        let mut s = Vec::new();
        m.scores(&[(1, 1.0)], &mut s);
        assert!(s[0] > s[1]);
        m.scores(&[(2, 1.0)], &mut s);
        assert!(s[1] > s[0]);
        softmax(&mut s, 0.5);
        assert!((s.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        m.scores(&[(99, 1.0)], &mut s);
        assert_eq!(s.len(), 2);
    }
}
