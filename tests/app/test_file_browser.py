"""Browse... works without a native dialog program (issue 16, item 10): the in-app browser lists folders and the
matching files, enters folders, and the chosen model opens. The real window with the deterministic FakeBackend;
this machine has no zenity/kdialog, and PATH is emptied so the test does not depend on that."""
from __future__ import annotations

from pathlib import Path

from app.widgets.file_browser import Entry, list_folder
from app.widgets.inversion import InversionWidget
from app.widgets.model import ModelWidget
from tests.app.conftest import settle
from tests.app.fake_backend import FakeBackend


def test_list_folder_filters_and_orders(tmp_path):
    (tmp_path / "zeta").mkdir()
    (tmp_path / "Alpha").mkdir()
    for name in ("b.pkl", "A.PT", "notes.txt", ".hidden.pkl"):
        (tmp_path / name).write_bytes(b"x")
    entries, note = list_folder(tmp_path, (".pkl", ".pt"))
    assert entries == [Entry("Alpha", True), Entry("zeta", True), Entry("A.PT", False), Entry("b.pkl", False)]
    assert note is None
    missing, err = list_folder(tmp_path / "nope", (".pkl",))
    assert missing == [] and "cannot list" in err


def test_browse_without_a_native_dialog_opens_the_chosen_model(make_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")          # no zenity, kdialog, ... whatever the machine has
    (tmp_path / "runs").mkdir()
    model = tmp_path / "runs" / "m.pkl"
    model.write_bytes(b"x")
    opened = []
    backend = FakeBackend()
    v = make_viewer(lambda path: (opened.append(path), backend)[1], 960, 540)
    w = next(x for x in v.widgets if isinstance(x, ModelWidget))
    w.path_text = str(tmp_path)
    w._browse()                                           # what the Browse... button does
    assert w.browser.visible and v.load_error is None
    for _ in range(3):                                    # drawn in the panel, frames go on
        v.step()
    runs = next(e for e in w.browser.entries if e.name == "runs")
    assert runs.is_dir
    w.browser.choose(runs)                                # a click on the folder enters it
    assert w.browser.entries == [Entry("m.pkl", False)]
    assert w.browser.choose(w.browser.entries[0]) == model
    w.browser.accept()                                    # the Open button
    settle(v)
    assert opened and Path(opened[-1]) == model and not w.browser.visible
    assert w.path_text == str(model)


def test_photo_browse_without_a_native_dialog(make_viewer, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", "")
    (tmp_path / "face.jpg").write_bytes(b"x")
    (tmp_path / "model.pkl").write_bytes(b"x")
    v = make_viewer(lambda path: FakeBackend(), 960, 540)
    v.open_model("fake.pkl")
    settle(v)
    w = next(x for x in v.widgets if isinstance(x, InversionWidget))
    w.path = str(tmp_path / "face.jpg")
    w._browse()
    assert w.browser.visible and w.browser.selected == "face.jpg"
    assert [e.name for e in w.browser.entries] == ["face.jpg"]   # photos only
    settle(v)
