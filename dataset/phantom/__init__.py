"""The synthetic OCT phantom: procedural B-scans with drawn AMD biomarkers, lesion masks, derived
labels, tabular values and specialist-style reports (see docs and `make_dataset`)."""

from dataset.phantom.findings import sample_findings
from dataset.phantom.geometry import ScanGeometry
from dataset.phantom.make import make_dataset, write_samples
from dataset.phantom.render import RenderedScan, render_scan
from dataset.phantom.writer import load_masks, save_masks

__all__ = ["RenderedScan", "ScanGeometry", "load_masks", "make_dataset", "render_scan", "sample_findings",
           "save_masks", "write_samples"]
