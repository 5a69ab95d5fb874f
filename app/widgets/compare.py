"""A/B compare: pin what the panes show as A, keep exploring (that is B), then flip between the two with one click
(or hold the button to peek at A). Flipping restores the whole undoable state (latent, edits, camera, render
options: ``app.undo.Snapshot``), so every pane shows A or B exactly; changes made while A is shown change A."""
from __future__ import annotations

from imgui_bundle import imgui

from ..panes import DIM_COLOR
from ..undo import Snapshot


class CompareWidget:
    def __init__(self, viewer):
        self.viewer = viewer
        self.a: Snapshot | None = None
        self.b: Snapshot | None = None
        self.showing = "B"
        self.generation = -1

    def pin(self) -> None:
        """The current state becomes A (and stays on screen, as B)."""
        self.a, self.b, self.showing = Snapshot.of(self.viewer.state), None, "B"

    def show(self, which: str) -> None:
        """Show A or B (the state left behind is kept as the other one)."""
        if self.a is None or which == self.showing:
            return
        state = self.viewer.state
        if which == "A":
            self.b = Snapshot.of(state)
            self.a.restore(state)
        else:
            self.a = Snapshot.of(state)
            self.b.restore(state)
        self.showing = which

    def toggle(self) -> None:
        self.show("A" if self.showing == "B" else "B")

    def __call__(self) -> None:
        v = self.viewer
        if v.renderer.generation != self.generation:    # another model: the pins belong to the old one
            self.generation, self.a, self.b, self.showing = v.renderer.generation, None, None, "B"
        if not imgui.collapsing_header("A/B compare"):
            return
        if imgui.button("Pin as A"):
            self.pin()
        if self.a is None:
            imgui.same_line()
            imgui.text_colored(DIM_COLOR, "pin the current look, then keep exploring")
            return
        imgui.same_line()
        if imgui.button("Flip A/B"):
            self.toggle()
        imgui.same_line()
        for which in ("A", "B"):
            if imgui.radio_button(which, self.showing == which):
                self.show(which)
            imgui.same_line()
        imgui.new_line()
        imgui.text_colored(DIM_COLOR, f"showing {self.showing}; changes now change {self.showing}")
