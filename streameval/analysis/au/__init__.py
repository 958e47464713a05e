"""Action units (AU) from face meshes."""
