//! The little f32 arithmetic the core needs that `core` lacks before
//! Rust 1.85 or at all (`sqrt`): written out, so the core stays `no_std`
//! without a math library.

/// `|x|`.
#[inline]
pub fn abs(x: f32) -> f32 {
    if x < 0.0 {
        -x
    } else {
        x
    }
}

/// `x` limited to `[-limit, limit]` (`limit >= 0`); NaN becomes 0.
#[inline]
pub fn clamp_sym(x: f32, limit: f32) -> f32 {
    if x > limit {
        limit
    } else if x < -limit {
        -limit
    } else if x.is_nan() {
        0.0
    } else {
        x
    }
}

/// Square root of `x >= 0` (0 for negative or NaN input): Newton's method
/// from an exponent-halving first guess, to within an ulp or two.
pub fn sqrt(x: f32) -> f32 {
    if x.is_nan() || x <= 0.0 {
        return 0.0;
    }
    if x.is_infinite() {
        return x;
    }
    // Halving the biased exponent gives a guess within a factor of ~1.5.
    let mut y = f32::from_bits((x.to_bits() >> 1) + (127 << 22));
    for _ in 0..5 {
        y = 0.5 * (y + x / y);
    }
    y
}

/// Nearest integer of `x >= 0` as u32 (saturating; NaN gives 0).
#[inline]
pub fn round_u32(x: f32) -> u32 {
    (x + 0.5) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqrt_agrees_with_std() {
        for x in [
            1e-6f32, 0.01, 0.5, 1.0, 2.0, 3.0, 10.0, 123.456, 1e6, 3.4e38,
        ] {
            let want = x.sqrt();
            let got = sqrt(x);
            assert!(
                abs(got - want) <= want * 2e-7,
                "sqrt({x}) = {got}, std says {want}"
            );
        }
        assert_eq!(sqrt(0.0), 0.0);
        assert_eq!(sqrt(-4.0), 0.0);
        assert_eq!(sqrt(f32::NAN), 0.0);
    }

    #[test]
    fn clamping_and_rounding() {
        assert_eq!(clamp_sym(2.0, 1.0), 1.0);
        assert_eq!(clamp_sym(-2.0, 1.0), -1.0);
        assert_eq!(clamp_sym(0.25, 1.0), 0.25);
        assert_eq!(clamp_sym(f32::NAN, 1.0), 0.0);
        assert_eq!(abs(-3.5), 3.5);
        assert_eq!(round_u32(254.5), 255);
        assert_eq!(round_u32(0.49), 0);
        assert_eq!(round_u32(-1.0), 0);
    }
}
