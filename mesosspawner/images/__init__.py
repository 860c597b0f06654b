"""The images wing: the lab's images and people's own, apart from the spawner.

* ``lab``: build the lab's images whose build context changed, tag by content hash, push.
* ``cli``: the ``mesosspawner-images`` command (and ``serve``, the images service).
* ``registry``: reading the lab registry (tags, digests, sizes, labels).
* ``userimages``: PURE validation and Dockerfile template of a person's image.
* ``userprofiles``: a person's built images as the "My images" profile.
* ``service``: the images hub service (registry browser, "build my image").

Only this wing needs the ``docker`` package (the ``images`` extra); the spawner never imports it.
"""
