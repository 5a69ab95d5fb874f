"""Latent panel: seed, truncation, interpolation between two seeds (slider and loop), style mixing, inversion latent."""
from __future__ import annotations

from imgui_bundle import imgui

from ..panes import DIM_COLOR

MAX_SEED = 2**31 - 1


def seed_field(label: str, seed: int) -> int:
    """Type (double-click) or drag horizontally to change a seed."""
    _, seed = imgui.drag_int(label, seed, 0.05, 0, MAX_SEED)
    return min(max(int(seed), 0), MAX_SEED)


class LatentWidget:
    def __init__(self, viewer):
        self.viewer = viewer

    def __call__(self) -> None:
        v = self.viewer
        s = v.state.latent
        num_ws = v.info.num_ws if v.info is not None else 14
        if not imgui.collapsing_header("Latent", imgui.TreeNodeFlags_.default_open):
            return
        if s.stored is not None:
            if imgui.radio_button("Seed", not s.use_stored):
                s.use_stored = False
            imgui.same_line()
            if imgui.radio_button("Inversion result", s.use_stored):
                s.use_stored = True
        imgui.begin_disabled(s.use_stored)
        s.seed = seed_field("Seed", s.seed)
        _, s.psi = imgui.slider_float("Truncation psi", s.psi, -1.0, 2.0, "%.2f")
        _, s.cutoff = imgui.slider_int("Cutoff", s.cutoff, 0, num_ws)

        imgui.separator_text("Interpolation")
        s.interp_seed = seed_field("Seed B", s.interp_seed)
        _, s.interp_t = imgui.slider_float("Blend", s.interp_t, 0.0, 1.0, "%.3f")
        _, s.interp_animate = imgui.checkbox("Loop", s.interp_animate)
        imgui.same_line()
        imgui.set_next_item_width(-imgui.get_font_size() * 4)
        _, s.interp_speed = imgui.slider_float("loops/s", s.interp_speed, 0.01, 1.0, "%.2f")

        imgui.separator_text("Style mixing")
        _, s.mix_enabled = imgui.checkbox("Mix", s.mix_enabled)
        imgui.same_line()
        s.mix_seed = seed_field("Mix seed", s.mix_seed)
        _, s.mix_lo, s.mix_hi = imgui.drag_int_range2("Layers", s.mix_lo, s.mix_hi, 0.1, 0, num_ws)
        imgui.text_colored(DIM_COLOR, f"ws[{s.mix_lo}:{s.mix_hi}] of {num_ws} from the mix seed")
        imgui.end_disabled()
