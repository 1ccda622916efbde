//! The equity curve as a PNG (`equity.png`, beside report.html): drawn into an RGB buffer and encoded with the
//! `png` crate. No text (the figures are in the report and the summary): the curve, its drawdown shaded under the
//! running peak, and a light grid.

const W: usize = 1200;
const H: usize = 400;
const PAD: usize = 12;

struct Canvas {
    px: Vec<u8>,
}

impl Canvas {
    fn new() -> Canvas {
        Canvas { px: vec![255; W * H * 3] }
    }

    fn set(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < W && y < H {
            let i = (y * W + x) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    /// A line two pixels thick (Bresenham, with the pixel below each point).
    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3]) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            if x >= 0 && y >= 0 {
                self.set(x as usize, y as usize, c);
                self.set(x as usize, y as usize + 1, c);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }
}

/// `points` are (time, equity); drawn over equally spaced samples (market time).
pub fn equity_png(points: &[(i64, f64)], initial: f64) -> Result<Vec<u8>, String> {
    let mut c = Canvas::new();
    for k in 0..=4 {
        let y = PAD + (H - 2 * PAD) * k / 4;
        for x in PAD..W - PAD {
            c.set(x, y, [234, 238, 242]);
        }
    }
    if points.len() >= 2 {
        let (lo, hi) = points.iter().fold((initial, initial), |(lo, hi), (_, e)| (lo.min(*e), hi.max(*e)));
        let span = if hi > lo { hi - lo } else { 1.0 };
        let n = points.len() - 1;
        let x = |i: usize| (PAD + (W - 2 * PAD) * i / n) as i64;
        let y = |v: f64| (PAD as f64 + (H - 2 * PAD) as f64 * (1.0 - (v - lo) / span)).round() as i64;
        // The drawdown: shaded between the running peak and the curve, column by column.
        let mut peaks = Vec::with_capacity(points.len());
        let mut peak = initial;
        for (_, e) in points {
            peak = peak.max(*e);
            peaks.push(peak);
        }
        for col in PAD..W - PAD {
            let i = ((col - PAD) * n + (W - 2 * PAD) / 2) / (W - 2 * PAD);
            let i = i.min(n);
            for yy in y(peaks[i])..y(points[i].1) {
                c.set(col, yy as usize, [255, 215, 213]);
            }
        }
        let base = y(initial);
        for xx in PAD..W - PAD {
            c.set(xx, base.max(0) as usize, [175, 184, 193]);
        }
        for i in 1..points.len() {
            c.line((x(i - 1), y(points[i - 1].1)), (x(i), y(points[i].1)), [9, 105, 218]);
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, W as u32, H as u32);
        enc.set_color(png::ColorType::Rgb);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().map_err(|e| e.to_string())?;
        w.write_image_data(&c.px).map_err(|e| e.to_string())?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_png_of_the_curve() {
        let pts: Vec<(i64, f64)> =
            (0..500).map(|i| (i, 100.0 + ((i as f64) / 20.0).sin() * 5.0 - i as f64 / 100.0)).collect();
        let png = super::equity_png(&pts, 100.0).unwrap();
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let decoder = png::Decoder::new(std::io::Cursor::new(png));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (1200, 400));
        assert!(super::equity_png(&[], 100.0).is_ok(), "no curve: an empty chart, not an error");
    }
}
