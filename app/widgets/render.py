"""Render panel: neural rendering resolution, samples per ray, deterministic sampling, precision, the view shown in
the panes."""
from __future__ import annotations

from imgui_bundle import imgui

from ..state import VIEW_LABELS, VIEWER_PRECISIONS, VIEWS

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
        self.precision_combo()
        imgui.text("View:")
        for i, view in enumerate(VIEWS):
            if i:
                imgui.same_line()
            if imgui.radio_button(VIEW_LABELS[view], r.view == view):
                r.view = view

    def precision_combo(self) -> None:
        """fp32 (exact), bf16, or auto with what it means on this device ("auto = bf16 (AVX512-BF16)")."""
        v = self.viewer
        r = v.state.render
        auto = v.info.auto_precision_reason.replace("(auto: ", "(") if v.info is not None else "when a model is open"
        labels = {"fp32": "fp32 (exact)", "bf16": "bf16", "auto": f"auto = {auto}"}
        idx = VIEWER_PRECISIONS.index(r.precision) if r.precision in VIEWER_PRECISIONS else 0
        changed, idx = imgui.combo("Precision", idx, [labels[p] for p in VIEWER_PRECISIONS])
        if changed:
            r.precision = VIEWER_PRECISIONS[idx]
        if imgui.is_item_hovered():
            imgui.set_tooltip("number type of every render, video and inversion of this model:\n"
                              "fp32 reproduces EG3D's outputs (and a saved session's pixels) exactly;\n"
                              "bf16 computes the convolution stacks in bfloat16, about 2x faster for 512 px\n"
                              "models on a CPU with AVX512-BF16 or AMX (>= 48 dB PSNR against fp32)")
