/** The release version; build.ts stamps the same value into the artifacts' names and checksums. */
export const VERSION = "0.1.0";
