"""Photo preparation for inversion: face detection (``mtcnn``), the EG3D/FFHQ crop (``crop``), a camera estimate
from five landmarks (``camera``) and the pipeline that ties them together with its user-facing errors (``align``)."""
