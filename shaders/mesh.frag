#version 330 core
// Mesh shading: u_mode 0 = normals as colours, 1 = Lambert with a headlight, 2 = matcap (procedural clay sphere).
in vec3 v_normal;
in vec3 v_position;
in vec3 v_color;
out vec4 o_color;

uniform int u_mode;
uniform bool u_use_colors;

// Procedural matcap: the colour of a lit clay sphere at view-space normal n (key light top-left, rim light).
vec3 matcap(vec3 n) {
    vec3 key = normalize(vec3(-0.45, 0.55, 0.7));
    float diffuse = max(dot(n, key), 0.0);
    float spec = pow(max(dot(reflect(-key, n), vec3(0.0, 0.0, 1.0)), 0.0), 24.0);
    float rim = pow(1.0 - max(n.z, 0.0), 3.0);
    vec3 clay = vec3(0.80, 0.62, 0.52);
    return clay * (0.22 + 0.78 * diffuse) + vec3(0.35) * spec + vec3(0.25, 0.28, 0.35) * rim;
}

void main() {
    vec3 n = normalize(v_normal);
    vec3 to_eye = normalize(-v_position);
    if (dot(n, to_eye) < 0.0) n = -n;  // two-sided: marching-cubes meshes are not always closed
    vec3 albedo = u_use_colors ? v_color : vec3(0.78);
    vec3 c;
    if (u_mode == 0) {
        c = n * 0.5 + 0.5;
    } else if (u_mode == 1) {
        c = albedo * (0.15 + 0.85 * max(dot(n, to_eye), 0.0));
    } else {
        c = matcap(n) * (u_use_colors ? albedo / 0.78 : vec3(1.0));
    }
    o_color = vec4(clamp(c, 0.0, 1.0), 1.0);
}
