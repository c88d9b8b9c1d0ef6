# The `busybox` moto runs to copy a zip function's code into a volume (it looks up
# docker.io/library/busybox:latest and runs `sleep 100`). Built from Debian's busybox-static: nothing can be
# pulled here.
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/bin
CMD ["sh"]
