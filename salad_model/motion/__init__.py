"""Motion formats and geometry: skeleton tables, the HumanML3D feature layout, BVH, motion files (no model code)."""
