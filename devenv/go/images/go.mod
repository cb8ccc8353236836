// Programs packed into the local clusters' images by devenv (standard library only):
// pause (a pod sandbox's PID 1) and app (the demo application). Built static.
module palette.local/devenv/images

go 1.26.0
