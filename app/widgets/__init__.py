"""Control-panel widgets, one per file (the StyleGAN3 visualizer's ``viz/*_widget.py`` structure).

Each widget is a class built with the viewer and called once per frame inside the control panel; it reads and
mutates ``viewer.state`` and calls viewer methods for actions. Widgets never touch torch or a model.
"""
