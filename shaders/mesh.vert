#version 330 core
// Mesh pane: positions, normals and vertex colours in model space; shading happens in view space.
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec3 a_normal;
layout(location = 2) in vec3 a_color;

uniform mat4 u_model_view;
uniform mat4 u_projection;

out vec3 v_normal;    // view space
out vec3 v_position;  // view space
out vec3 v_color;

void main() {
    vec4 p = u_model_view * vec4(a_position, 1.0);
    v_position = p.xyz;
    v_normal = mat3(u_model_view) * a_normal;  // rigid model-view: no inverse-transpose needed
    v_color = a_color;
    gl_Position = u_projection * p;
}
