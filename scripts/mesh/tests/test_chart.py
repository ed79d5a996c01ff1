"""The coverage SVG and its labels."""

import re
import unittest
import xml.etree.ElementTree as ET

from mesh.chart import (Frame, chart_notes, chart_subtitle, chart_title, curve_points, format_seconds,
                        format_tick, nice_step, render_coverage_svg)

SVG = "{http://www.w3.org/2000/svg}"


def summary(**overrides):
    base = {"nodes": 32, "max_active_peers": 2, "topology": "star", "messages": 3, "size": 1024,
            "sender": 5, "seed": 7, "formation_s": 1.234, "first_coverage_s": 0.1,
            "coverage_50_s": 0.5, "coverage_90_s": 0.9, "full_coverage_s": None, "coverage": 0.875}
    base.update(overrides)
    return base


class TicksTest(unittest.TestCase):
    def test_nice_step(self):
        self.assertAlmostEqual(nice_step(1.05), 0.2)
        self.assertAlmostEqual(nice_step(8.0), 1.0)
        self.assertAlmostEqual(nice_step(16.0), 2.0)
        self.assertAlmostEqual(nice_step(20.0), 2.5)
        self.assertAlmostEqual(nice_step(33.0), 5.0)
        self.assertAlmostEqual(nice_step(126.0), 20.0)

    def test_nice_step_of_nothing_is_tiny_but_positive(self):
        self.assertGreater(nice_step(0.0), 0.0)
        self.assertLess(nice_step(0.0), 1e-9)

    def test_format_tick(self):
        self.assertEqual(format_tick(0.1 + 0.2), "0.3")
        self.assertEqual(format_tick(2.0), "2")
        self.assertEqual(format_tick(0.0), "0")
        self.assertEqual(format_tick(12.5), "12.5")


class FrameTest(unittest.TestCase):
    def test_axis_ends_on_a_round_number_past_the_end(self):
        frame = Frame.for_end(10.0)  # 10.5 -> step 2 -> 12
        self.assertAlmostEqual(frame.step, 2.0)
        self.assertAlmostEqual(frame.x_max, 12.0)
        self.assertEqual(Frame.for_end(0.0).x_max, 1.0)

    def test_scales_and_clamps(self):
        frame = Frame.for_end(0.0)
        self.assertEqual(frame.sx(0.0), 80)
        self.assertEqual(frame.sx(1.0), 80 + 780)
        self.assertEqual(frame.sx(5.0), 80 + 780)
        self.assertEqual(frame.sx(-1.0), 80)
        self.assertEqual(frame.sy(0.0), 84 + 372)
        self.assertEqual(frame.sy(1.0), 84)


class CurveTest(unittest.TestCase):
    def test_steps_up_at_each_delivery(self):
        frame = Frame.for_end(0.0)  # x axis 0..1 s over 780 px
        points = curve_points(frame, [0.5, 1.0], 2, 1.0)
        self.assertEqual(points, [(80, 456), (470, 456), (470, 270), (860, 270), (860, 84), (860, 84)])

    def test_incomplete_curve_stops_at_x_end(self):
        frame = Frame.for_end(0.0)
        points = curve_points(frame, [0.25], 4, 0.5)
        self.assertEqual(points[-1], (470, frame.sy(0.25)))

    def test_nothing_delivered_and_nothing_due(self):
        frame = Frame.for_end(0.0)
        self.assertEqual(curve_points(frame, [], 5, 0.0), [(80, 456), (80, 456)])
        self.assertEqual(curve_points(frame, [], 0, 0.0), [(80, 456), (860, 456)])


class RenderTest(unittest.TestCase):
    def render(self, **kwargs):
        args = {"times": [0.5, 1.0, 2.0], "total": 4, "x_end": 3.0, "title": "N=4 <star> & co",
                "subtitle": "sub", "notes": ["a", "b"], "timeout_at": None}
        args.update(kwargs)
        return render_coverage_svg(**args)

    def test_is_valid_svg_with_escaped_title(self):
        root = ET.fromstring(self.render())
        self.assertEqual(root.tag, f"{SVG}svg")
        texts = [t.text for t in root.iter(f"{SVG}text")]
        self.assertIn("N=4 <star> & co", texts)
        self.assertIn("seconds since first send", texts)
        self.assertEqual([t for t in texts if t and t.endswith("%")][:2], ["0%", "10%"])

    def test_notes_and_timeout_appear_only_when_given(self):
        plain = self.render(notes=[])
        self.assertNotIn("timeout", plain)
        self.assertNotIn("<rect x=", plain)
        marked = self.render(timeout_at=2.5, notes=["first", "second", "third"])
        self.assertEqual(marked.count(">timeout</text>"), 1)
        self.assertEqual(marked.count('stroke-dasharray="6 4"'), 1)
        self.assertEqual(len(re.findall(r'font-size="13" fill="#222">(first|second|third)<', marked)), 3)

    def test_empty_run(self):
        root = ET.fromstring(self.render(times=[], total=0, x_end=0.0, notes=[]))
        polyline = root.find(f"{SVG}polyline")
        self.assertEqual(polyline.get("points"), "80.0,456.0 860.0,456.0")


class LabelsTest(unittest.TestCase):
    def test_format_seconds(self):
        self.assertEqual(format_seconds(None), "—")
        self.assertEqual(format_seconds(1.0), "1.00 s")
        self.assertEqual(format_seconds(0.005), "0.01 s")

    def test_notes(self):
        self.assertEqual(chart_notes(summary()), [
            "first copy: 0.10 s", "50% covered: 0.50 s", "90% covered: 0.90 s",
            "100% covered: —", "final coverage: 87.5%"])

    def test_title_and_subtitle(self):
        self.assertEqual(chart_title(summary()), "mule mesh coverage — N=32, L=2, topology=star")
        self.assertEqual(chart_subtitle(summary()),
                         "3 message(s) × 1024 B from node 5, seed 7, mesh formed in 1.23 s")


if __name__ == "__main__":
    unittest.main()
