"""Render panel: neural rendering resolution, samples per ray, deterministic sampling, the view shown in the panes."""
from __future__ import annotations

from imgui_bundle import imgui

from ..state import VIEW_LABELS, VIEWS

RESOLUTIONS = (0, 16, 32, 64, 128, 256, 512)


class RenderWidget:
    def __init__(self, viewer):
        self.viewer = viewer

    def __call__(self) -> None:
        v = self.viewer
        r = v.state.render
        if not imgui.collapsing_header("Render", imgui.TreeNodeFlags_.default_open):
            return
        native = v.info.neural_resolution if v.info is not None else 0
        labels = [f"model's ({native})" if x == 0 else str(x) for x in RESOLUTIONS]
        idx = RESOLUTIONS.index(r.resolution) if r.resolution in RESOLUTIONS else 0
        changed, idx = imgui.combo("Resolution", idx, labels)
        if changed:
            r.resolution = RESOLUTIONS[idx]
        if imgui.is_item_hovered():
            imgui.set_tooltip("rays per side of sr2d's neural rendering; direct3d renders its output\n"
                              "resolution scaled by the same factor")
        coarse = v.info.depth_samples if v.info is not None else 0
        fine = v.info.importance_samples if v.info is not None else 0
        _, r.depth_samples = imgui.slider_int("Samples", r.depth_samples, 0, 192,
                                              f"model's ({coarse})" if r.depth_samples == 0 else "%d")
        _, r.importance_samples = imgui.slider_int("Importance", r.importance_samples, 0, 192,
                                                   f"model's ({fine})" if r.importance_samples == 0 else "%d")
        _, r.deterministic = imgui.checkbox("Deterministic sampling", r.deterministic)
        _, r.adaptive = imgui.checkbox("Lower resolution while moving", r.adaptive)
        _, r.lockstep = imgui.checkbox("Branches in lock-step", r.lockstep)
        if imgui.is_item_hovered():
            imgui.set_tooltip("during animations every pane shows the same frame: a frame appears once all\n"
                              "branches have rendered it (at the pace of the slowest branch)")
        imgui.text("View:")
        for i, view in enumerate(VIEWS):
            if i:
                imgui.same_line()
            if imgui.radio_button(VIEW_LABELS[view], r.view == view):
                r.view = view
