"""XRD ground truth: the pattern conventions, peak picking and alignment, and the diffraction simulator."""
