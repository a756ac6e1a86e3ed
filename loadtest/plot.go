package loadtest

import (
	"image"
	"image/color"
	"image/png"
	"io"
)

// PlotCurves draws curves (each a series of values in [0,1], one every step of the x axis) as
// a PNG line chart with a light grid: the storm's share of clients back over time. No labels:
// the note that shows it says what the axes are.
func PlotCurves(w io.Writer, curves [][]float64, colors []color.RGBA) error {
	const W, H, pad = 800, 400, 20
	img := image.NewRGBA(image.Rect(0, 0, W, H))
	for i := range img.Pix {
		img.Pix[i] = 255
	}
	grid := color.RGBA{220, 220, 220, 255}
	for i := 0; i <= 10; i++ { // tenths of the height, and of the width
		y := pad + (H-2*pad)*i/10
		x := pad + (W-2*pad)*i/10
		for xx := pad; xx <= W-pad; xx++ {
			img.Set(xx, y, grid)
		}
		for yy := pad; yy <= H-pad; yy++ {
			img.Set(x, yy, grid)
		}
	}
	n := 0
	for _, c := range curves {
		n = max(n, len(c))
	}
	if n < 2 {
		return png.Encode(w, img)
	}
	px := func(i int, v float64) (int, int) {
		x := pad + (W-2*pad)*i/(n-1)
		y := H - pad - int(float64(H-2*pad)*min(max(v, 0), 1))
		return x, y
	}
	for ci, c := range curves {
		col := colors[ci%len(colors)]
		for i := 1; i < len(c); i++ {
			x0, y0 := px(i-1, c[i-1])
			x1, y1 := px(i, c[i])
			line(img, x0, y0, x1, y1, col)
		}
	}
	return png.Encode(w, img)
}

// line draws a 3-pixel-thick line (Bresenham).
func line(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	dx, dy := abs(x1-x0), -abs(y1-y0)
	sx, sy := 1, 1
	if x0 > x1 {
		sx = -1
	}
	if y0 > y1 {
		sy = -1
	}
	err := dx + dy
	for {
		for ox := -1; ox <= 1; ox++ {
			for oy := -1; oy <= 1; oy++ {
				img.Set(x0+ox, y0+oy, c)
			}
		}
		if x0 == x1 && y0 == y1 {
			return
		}
		e2 := 2 * err
		if e2 >= dy {
			err += dy
			x0 += sx
		}
		if e2 <= dx {
			err += dx
			y0 += sy
		}
	}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
