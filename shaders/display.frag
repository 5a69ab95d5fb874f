#version 330 core
// Pane display: u_mode 0 = colour image, 1 = depth through a colour map, 2 = normals from depth.
// Depth is EG3D's per-ray distance t along unit ray directions of an OpenCV camera with normalised
// intrinsics (focal u_focal, principal point (0.5, 0.5)).
in vec2 v_uv;
out vec4 o_color;

uniform sampler2D u_image;   // RGB(A) uint8 image
uniform sampler2D u_depth;   // R32F depth
uniform int u_mode;
uniform vec2 u_depth_range;  // (near, far) mapped to the two ends of the colour map
uniform vec2 u_texel;        // 1 / depth texture size
uniform float u_focal;

// Near = light yellow, far = deep blue; piecewise linear through five stops.
vec3 depth_colormap(float t) {
    const vec3 c0 = vec3(0.988, 0.945, 0.667);
    const vec3 c1 = vec3(0.984, 0.612, 0.235);
    const vec3 c2 = vec3(0.820, 0.247, 0.365);
    const vec3 c3 = vec3(0.396, 0.114, 0.510);
    const vec3 c4 = vec3(0.043, 0.035, 0.200);
    t = clamp(t, 0.0, 1.0) * 4.0;
    if (t < 1.0) return mix(c0, c1, t);
    if (t < 2.0) return mix(c1, c2, t - 1.0);
    if (t < 3.0) return mix(c2, c3, t - 2.0);
    return mix(c3, c4, t - 3.0);
}

// Camera-space point (OpenCV: x right, y down, z forward) seen through texture coordinate uv.
vec3 unproject(vec2 uv) {
    float t = texture(u_depth, uv).r;
    vec3 dir = normalize(vec3((uv - 0.5) / u_focal, 1.0));
    return t * dir;
}

void main() {
    if (u_mode == 0) {
        o_color = vec4(texture(u_image, v_uv).rgb, 1.0);
    } else if (u_mode == 1) {
        float d = texture(u_depth, v_uv).r;
        float span = max(u_depth_range.y - u_depth_range.x, 1e-6);
        o_color = vec4(depth_colormap((d - u_depth_range.x) / span), 1.0);
    } else {
        vec3 dx = unproject(v_uv + vec2(u_texel.x, 0.0)) - unproject(v_uv - vec2(u_texel.x, 0.0));
        vec3 dy = unproject(v_uv + vec2(0.0, u_texel.y)) - unproject(v_uv - vec2(0.0, u_texel.y));
        vec3 n = normalize(cross(dx, dy));
        if (n.z > 0.0) n = -n;                   // face the camera
        vec3 n_gl = vec3(n.x, -n.y, -n.z);       // OpenGL view axes: y up, z towards the viewer
        o_color = vec4(n_gl * 0.5 + 0.5, 1.0);
    }
}
