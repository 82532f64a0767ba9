// Placeholder entry point until the composition root lands.
int main() { return 0; }
