"""Trident's desktop viewer (GLFW + imgui-bundle + PyOpenGL). Talks to models only through ``core``'s API.

Not built yet: see the project issues. Nothing here may import ``training``.
"""
