package main

import (
	"fmt"
	"image/color"
	"io"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgimg"
)

// Chart draws the report as a PNG of three panels: end-to-end latency
// against the offered rate (p99 solid, p50 dashed, log scale), each
// stage's throughput against the offered rate (with the offered rate
// itself as the line to keep up with), and each stage alone as a share of
// its server's own tool.
func Chart(w io.Writer, r Report) error {
	if len(r.Steps) == 0 && len(r.Stages) == 0 {
		return fmt.Errorf("nothing to chart")
	}
	lat, err := latencyPlot(r)
	if err != nil {
		return err
	}
	thr, err := throughputPlot(r)
	if err != nil {
		return err
	}
	base, err := baselinePlot(r)
	if err != nil {
		return err
	}
	const width, height = 18 * vg.Inch, 6 * vg.Inch
	img := vgimg.NewWith(vgimg.UseWH(width, height), vgimg.UseDPI(96))
	dc := draw.New(img)
	tiles := draw.Tiles{Rows: 1, Cols: 3, PadX: vg.Inch / 3, PadY: vg.Inch / 4, PadTop: vg.Inch / 4, PadBottom: vg.Inch / 6, PadLeft: vg.Inch / 6, PadRight: vg.Inch / 4}
	plots := [][]*plot.Plot{{lat, thr, base}}
	canvases := plot.Align(plots, tiles, dc)
	for i, p := range plots[0] {
		p.Draw(canvases[0][i])
	}
	_, err = vgimg.PngCanvas{Canvas: img}.WriteTo(w)
	return err
}

func latencyPlot(r Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Collector accept → … latency"
	p.X.Label.Text = "offered events/s"
	p.X.Tick.Marker = wholeTicks{}
	p.Y.Label.Text = "ms (log)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top, p.Legend.Left = true, true
	paths := []struct {
		name string
		get  func(Step) Latency
	}{
		{"resolved", func(s Step) Latency { return s.Resolved }},
		{"segment trigger", func(s Step) Latency { return s.Trigger }},
		{"ClickHouse row", func(s Step) Latency { return s.Row }},
	}
	for i, path := range paths {
		var p50, p99 plotter.XYs
		for _, s := range r.Steps {
			l := path.get(s)
			if l.Count == 0 || l.P50 <= 0 || l.P99 <= 0 {
				continue
			}
			p50 = append(p50, plotter.XY{X: float64(s.Rate), Y: l.P50})
			p99 = append(p99, plotter.XY{X: float64(s.Rate), Y: l.P99})
		}
		if len(p99) == 0 {
			continue
		}
		c := plotutil.Color(i)
		if err := addLine(p, p99, c, nil, path.name+" p99"); err != nil {
			return nil, err
		}
		if err := addLine(p, p50, c, []vg.Length{vg.Points(5), vg.Points(3)}, path.name+" p50"); err != nil {
			return nil, err
		}
	}
	p.Y.Max *= 6 // head room for the legend (log scale)
	return p, nil
}

func throughputPlot(r Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Throughput per stage"
	p.X.Label.Text = "offered events/s"
	p.X.Tick.Marker = wholeTicks{}
	p.Y.Label.Text = "messages/s"
	p.Y.Tick.Marker = wholeTicks{}
	p.Legend.Top, p.Legend.Left = true, true
	var offered plotter.XYs
	for _, s := range r.Steps {
		offered = append(offered, plotter.XY{X: float64(s.Rate), Y: float64(s.Rate)})
	}
	if len(offered) > 0 {
		if err := addLine(p, offered, color.Gray{Y: 150}, []vg.Length{vg.Points(2), vg.Points(2)}, "offered"); err != nil {
			return nil, err
		}
	}
	for i, svc := range Services {
		var xy plotter.XYs
		for _, s := range r.Steps {
			if v, ok := s.Throughput[svc]; ok {
				xy = append(xy, plotter.XY{X: float64(s.Rate), Y: v})
			}
		}
		if len(xy) == 0 {
			continue
		}
		if err := addLine(p, xy, plotutil.Color(i+1), nil, svc); err != nil {
			return nil, err
		}
	}
	p.Y.Min, p.Y.Max = 0, p.Y.Max*1.35 // head room for the legend
	return p, nil
}

func baselinePlot(r Report) (*plot.Plot, error) {
	p := plot.New()
	p.Title.Text = "Stage alone ÷ its server's own tool (same run)"
	p.Y.Label.Text = "ratio"
	p.Y.Min = 0
	var names []string
	var ratios plotter.Values
	for _, st := range r.Stages {
		if st.Ratio <= 0 {
			continue
		}
		names = append(names, st.Name)
		ratios = append(ratios, st.Ratio)
	}
	if len(names) == 0 {
		return p, nil
	}
	bars, err := plotter.NewBarChart(ratios, vg.Points(40))
	if err != nil {
		return nil, err
	}
	bars.Color = plotutil.Color(0)
	p.Add(bars)
	p.NominalX(names...)
	p.Y.Max = max(1, p.Y.Max)
	return p, nil
}

func addLine(p *plot.Plot, xy plotter.XYs, c color.Color, dashes []vg.Length, name string) error {
	l, pts, err := plotter.NewLinePoints(xy)
	if err != nil {
		return fmt.Errorf("charting %s: %w", name, err)
	}
	l.Color, l.Dashes, l.Width = c, dashes, vg.Points(1.5)
	pts.Color = c
	p.Add(l, pts)
	p.Legend.Add(name, l)
	return nil
}

// wholeTicks are the default ticks labelled as whole numbers (1000, not
// 1000.00).
type wholeTicks struct{}

func (wholeTicks) Ticks(lo, hi float64) []plot.Tick {
	ticks := plot.DefaultTicks{}.Ticks(lo, hi)
	for i := range ticks {
		if ticks[i].Label != "" {
			ticks[i].Label = fmt.Sprintf("%.0f", ticks[i].Value)
		}
	}
	return ticks
}
