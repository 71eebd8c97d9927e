"""Pure imaging code: readers, geometry, label tables and browser payloads.

No web framework, database or other portal package is imported here, and
importing a module has no side effects. Start with:

* :mod:`portal.imaging.volume` - :class:`~portal.imaging.volume.Volume`, RAS+ geometry;
* :mod:`portal.imaging.nifti` and :mod:`portal.imaging.dicom` - readers (and writers);
* :mod:`portal.imaging.labels` - label tables and colours;
* :mod:`portal.imaging.preview` - what the browser viewer receives;
* :mod:`portal.imaging.demo` - the demo dataset from installed packages;
* :mod:`portal.imaging.errors` - :class:`~portal.imaging.errors.ImagingError`.
"""
