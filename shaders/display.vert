#version 330 core
// Fullscreen triangle for the image panes: no vertex buffer, positions come from gl_VertexID.
// v_uv is a texture coordinate with (0, 0) at the image's top-left (numpy row 0 is uploaded first).
out vec2 v_uv;

void main() {
    vec2 p = vec2(float((gl_VertexID << 1) & 2), float(gl_VertexID & 2));  // (0,0) (2,0) (0,2)
    v_uv = vec2(p.x, 1.0 - p.y);
    gl_Position = vec4(p * 2.0 - 1.0, 0.0, 1.0);
}
