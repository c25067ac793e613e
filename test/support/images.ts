// The nginx image the Docker suites start: NGINX_IMAGE, by default the local stand-in that
// scripts/build-images.sh builds. Its own module so that the pretest check loads no testcontainers.
export const NGINX_IMAGE = process.env.NGINX_IMAGE ?? 'sluice-local/nginx:1.22';
