// Set when the app itself leaves the page on purpose (an expired session sends the user to the login
// page): the unsaved-form guard then lets the page go instead of holding it with a dialog.
export const unloadState = { forced: false };
