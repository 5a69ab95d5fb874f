"""Trident's desktop viewer (GLFW + imgui-bundle + PyOpenGL): every branch of a model side by side, live.

Layers (each file one concern): ``main`` (command line) -> ``viewer`` (window layout, frame loop) -> ``widgets/*``
(one control panel per file) and ``panes`` / ``mesh_view`` (GL views through ``shaders/``) -> ``async_renderer``
(render thread) -> ``model_backend`` (``core.model`` behind a request/result interface) -> ``core``. Background jobs
(mesh, video, inversion) run through ``tasks`` and ``jobs``. Only ``model_backend``, ``jobs``, ``measure`` and ``main``
(its thread count) touch torch; nothing here imports ``training``.
"""
